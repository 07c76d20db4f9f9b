"""The export flow configurations the benchmarks compare (shared by realtime.py and backfill.py)."""

from eventsync_salesforce.sandbox.wiring import REGISTRATION_ID_FIELD

FIELDS = [
    {"target": "FirstName", "source": "firstName"},
    {"target": "LastName", "source": "lastName", "transforms": [{"name": "truncate"}]},
    {"target": "Email", "source": "email", "transforms": ["strip", "lower"]},
    {
        "target": "Company",
        "source": "headline",
        "transforms": [{"name": "default", "value": "Hopin"}],
    },
]
#: Upsert on an external-id field holding the registration id: one Collections call a batch.
EXTERNAL_ID = {
    "target_object": "Lead",
    "match_key": REGISTRATION_ID_FIELD,
    "fields": [*FIELDS, {"target": REGISTRATION_ID_FIELD, "source": "id"}],
}
#: The guide's match on Email: one query plus one Collections call a batch.
EMAIL = {"target_object": "Lead", "match_key": "Email", "fields": FIELDS}
