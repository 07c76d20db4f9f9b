"""Salesforce plugin for eventsync, with a local Salesforce sandbox."""
