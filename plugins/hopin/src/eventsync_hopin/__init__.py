"""Hopin (RingCentral Events) plugin for eventsync, with a local Hopin sandbox."""
