"""pardot_guard passes the core conformance kit's checks for a concern plugin."""

from eventsync.testing import concern_plugin_tests

TestPardotGuardConformance = concern_plugin_tests("pardot_guard")
