"""An example third-party flow for eventsync: one CRM record per event-platform ticket."""
