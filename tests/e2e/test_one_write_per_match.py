"""One write per match key per batch: registrations sharing an email become one CRM record.

Both registrations are marked by one backfill before the engine starts, and one worker leases
them, so they are one batch (two workers leasing at once on PostgreSQL may split due rows
between them: ``SKIP LOCKED``). The email differs in case only: the CRM matches emails ignoring
case.
"""

from __future__ import annotations

from eventsync.models import Filter, PullRequest

FIELDS = [
    {"target": "LastName", "source": "lastName"},
    {"target": "Email", "source": "email"},
    {
        "target": "Company",
        "source": "headline",
        "transforms": [{"name": "default", "value": "Hopin"}],
    },
]
CASCADE = [{"object": "Contact", "match_key": "Email"}, {"object": "Lead", "match_key": "Email"}]


def export(**options):
    return {
        "export_registrations": {
            "target_object": "Lead",
            "match_key": "Email",
            "fields": FIELDS,
            **options,
        }
    }


def twins(env, email: str) -> tuple[list[str], str]:
    """Two registrations of ``email`` (in two spellings), the first changed last; their ids and
    the last name of the one that must win (the latest by modified time, then id)."""
    first = env.register(email, lastName="First")
    second = env.register(email.upper(), lastName="Second")
    env.hopin_admin("PATCH", f"/registrations/{first}", {"lastName": "Changed"})
    records = list(env.hooks.pull(env.platform, PullRequest("registration", ids=(first, second))))
    latest = max(records, key=lambda r: (r.modified_at, r.id))
    return [first, second], str(latest.get("lastName"))


ONE_WORKER = {"workers": 1}


def _run(env) -> None:
    result = env.engine.backfill("e2e", "export_registrations")
    assert result.finished and result.marked >= 2
    env.engine.start()
    assert env.engine.wait_idle(30)
    store = env.engine.store
    assert store.dead_letter_count() == 0, store.dead_letters()


def _linked_to(env, ids: list[str]) -> set[tuple[str, str]]:
    links = env.engine.store.get_links("e2e", "export_registrations", ids)
    assert sorted(links) == sorted(ids), f"not every registration is linked: {links}"
    return {(link.target_object, link.target_id) for link in links.values()}


def test_two_registrations_with_one_email_in_a_batch_make_one_lead(make_env):
    env = make_env(
        triggers=False, pollers=False, start=False, flows=export(), engine_options=ONE_WORKER
    )
    ids, winner = twins(env, "twin@example.com")
    _run(env)
    leads = [x for x in env.leads() if str(x.get("Email")).lower() == "twin@example.com"]
    assert len(leads) == 1, leads
    assert leads[0].get("LastName") == winner == "Changed"
    assert _linked_to(env, ids) == {("Lead", leads[0].id)}
    log = env.engine.store.sync_log(flow="export_registrations", outcome="done")
    assert len({e.entity for e in log}) == 2
    assert any("one write with" in e.message for e in log)


def test_the_match_cascade_also_writes_once_per_email(make_env):
    env = make_env(
        triggers=False,
        pollers=False,
        start=False,
        flows=export(match_cascade=CASCADE),
        engine_options=ONE_WORKER,
    )
    [contact] = env.sf_insert("Contact", [{"LastName": "Old", "Email": "known@example.com"}])
    known, known_winner = twins(env, "known@example.com")
    fresh, fresh_winner = twins(env, "fresh@example.com")
    _run(env)
    # the pair matching a Contact updated that Contact, once, and created no Lead
    [c] = env.sf_query("Contact", ("Id", "LastName"), Filter("Email", "=", "known@example.com"))
    assert (c.id, c.get("LastName")) == (contact, known_winner)
    assert _linked_to(env, known) == {("Contact", contact)}
    # the pair matching nothing created one Lead, in the cascade's last object
    leads = env.leads()
    assert [str(x.get("Email")).lower() for x in leads] == ["fresh@example.com"]
    assert leads[0].get("LastName") == fresh_winner
    assert _linked_to(env, fresh) == {("Lead", leads[0].id)}
