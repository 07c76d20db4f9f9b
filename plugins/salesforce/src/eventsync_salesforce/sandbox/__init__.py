"""A local, stateful emulator of a Salesforce org (the "sandbox").

It serves the REST, OAuth and Bulk 2.0 wire formats of Salesforce's REST API documentation over
HTTPS with a locally generated CA, so production client code (simple-salesforce) runs
unchanged against it. Entry point: :func:`eventsync_salesforce.sandbox.server.start`.
"""
