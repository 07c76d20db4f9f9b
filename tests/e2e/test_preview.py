"""A preview's predictions match what a real run then does, record for record, on both stores.

The batch mixes every case: a new person (create), an existing Lead with a different last name
(update), one whose values are the CRM's already (unchanged, unlinked), one linked by an
earlier run (unchanged, by hash), one whose only differences are held by policies (policy
skip), one that cannot be mapped and one the CRM would refuse (fail). The preview writes
nothing: the outbox, links, audit trail and the CRM are as they were. The real run is then
compared through the audit trail (the fields each write changed) and the dead letters.
"""

from __future__ import annotations

from eventsync.models import Filter

FIELDS = [
    {"target": "LastName", "source": "lastName"},
    {"target": "Email", "source": "email"},
    {
        "target": "Company",
        "source": "headline",
        "transforms": [{"name": "default", "value": "Hopin attendee"}],
    },
    {"target": "FirstName", "source": "firstName", "policy": "if_empty"},
    {"target": "Description", "source": "metadata.joined", "transforms": ["datetime"]},
]
FLOWS = {"export_registrations": {"target_object": "Lead", "match_key": "Email", "fields": FIELDS}}


def _state(env) -> tuple:
    store = env.engine.store
    return (
        store.flow_status("e2e", "export_registrations").pending,
        sorted(store.get_links("e2e", "export_registrations", _ALL).items()),
        len(store.audit_entries(org="e2e")),
        sorted((x.id, x.get("LastName"), x.get("FirstName")) for x in env.leads()),
    )


_ALL: list[str] = []


def test_preview_predicts_the_real_run_record_for_record(make_env):
    env = make_env(triggers=False, pollers=False, start=False, flows=FLOWS)
    env.sf_insert(
        "Lead",
        [
            {"Email": "upd@example.com", "LastName": "Old", "Company": "UpdCo"},
            {"Email": "same@example.com", "LastName": "Same", "FirstName": "Sam", "Company": "S"},
            {"Email": "held@example.com", "LastName": "Held", "FirstName": "Hal", "Company": "H"},
        ],
    )
    ids = {
        "create": env.register("new@example.com", firstName="Nina", lastName="New"),
        "update": env.register("upd@example.com", firstName="Uma", lastName="Updated"),
        "same": env.register("same@example.com", firstName="Sam", lastName="Same", headline="S"),
        "held": env.register("held@example.com", firstName="Harold", lastName="Held"),
        "unmappable": env.register(
            "bad@example.com", lastName="Bad", metadata={"joined": "not a date"}
        ),
        "refused": env.register("nolast@example.com", firstName="No", lastName=""),
        "linked": env.register("linked@example.com", firstName="Lin", lastName="Ked"),
    }
    _ALL[:] = ids.values()
    # An earlier run linked one registration: previewing it again is "unchanged" by hash.
    env.engine.start()
    env.engine.sync_entity("e2e", "export_registrations", ids["linked"])
    assert env.engine.wait_idle(60)
    env.engine.stop()

    earlier = {a.id for a in env.engine.store.audit_entries(org="e2e")}
    before = _state(env)
    plan = env.engine.preview("e2e", "export_registrations")
    assert _state(env) == before, "a preview wrote something"
    got = {name: plan.record(entity) for name, entity in ids.items()}
    assert {name: r.action for name, r in got.items()} == {
        "create": "create",
        "update": "update",
        "same": "skip",
        "held": "skip",
        "unmappable": "fail",
        "refused": "fail",
        "linked": "skip",
    }
    assert plan.summary() == {"create": 1, "update": 1, "skip": 3, "fail": 2}
    [update] = got["update"].writes
    assert dict(update.changes) == {
        "LastName": {"before": "Old", "after": "Updated"},
        "FirstName": {"before": None, "after": "Uma"},  # if_empty: the Lead had none
    }
    assert "Company" in update.held  # the default placeholder is for creates only
    assert got["held"].reason.startswith("unchanged: held by policy") and "FirstName" in (
        got["held"].reason
    )
    assert got["unmappable"].code == "MAPPING_FAILED"
    assert got["refused"].code == "REQUIRED_FIELD_MISSING"
    assert got["create"].writes[0].changes["Company"]["after"] == "Hopin attendee"

    # The real run.
    env.engine.start()
    assert env.engine.backfill("e2e", "export_registrations").finished
    assert env.engine.wait_idle(60)
    store = env.engine.store
    dead = {d.entity: d.code for d in store.dead_letters()}
    for name, entity in ids.items():
        predicted = got[name]
        writes = [a for a in store.audit_entries(org="e2e", entity=entity) if a.id not in earlier]
        if predicted.action == "fail":
            assert dead.get(entity) == predicted.code, (name, dead)
            assert writes == []
        elif predicted.action == "skip":
            assert entity not in dead and writes == [], (name, writes)
        else:
            [write] = writes
            assert write.operation == {"create": "insert", "update": "update"}[predicted.action]
            assert set(write.fields) == set(predicted.writes[0].changes), name
            assert entity not in dead
    [created] = env.sf_query("Lead", ("Company",), Filter("Email", "=", "new@example.com"))
    assert created.get("Company") == "Hopin attendee"
