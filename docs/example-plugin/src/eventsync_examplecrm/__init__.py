"""An example CRM plugin for eventsync: the whole CRM contract (docs/crm-contract.md) on a
small HubSpot-like API, with its own in-memory sandbox."""
