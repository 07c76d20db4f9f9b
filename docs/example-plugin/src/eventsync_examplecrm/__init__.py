"""A minimal example CRM plugin for eventsync."""
