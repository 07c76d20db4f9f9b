"""The HubSpot plugin for eventsync: contacts and custom objects through HubSpot's CRM v3 API,
webhooks v3, and a local sandbox of that API (the ``[sandbox]`` extra)."""
