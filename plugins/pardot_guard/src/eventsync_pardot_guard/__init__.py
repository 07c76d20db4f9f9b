"""Pardot opt-in, automation-user and trigger checks for eventsync."""
