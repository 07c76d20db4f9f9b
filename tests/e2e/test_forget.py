"""Erasure on both stores: `forget` leaves no trace of the address in any table of the state
store (a full scan of every table the database has, including ones eventsync does not know),
removes or anonymises what eventsync created remotely, leaves alone what it only matched, and
resumes after a remote failure instead of leaving the state half-erased."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from eventsync.erasure import ERASED
from eventsync.errors import RetryableError
from eventsync.models import Filter

from .conftest import Env, run_cli, write_cli_config


def _traces(env: Env, *needles: str) -> list[tuple[str, str]]:
    """(table, row) of every row of every table, in the store's database, holding a needle."""
    store = env.engine.store
    found = []
    with store.engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names(schema=store.tables.schema):
            table = sa.Table(name, sa.MetaData(schema=store.tables.schema), autoload_with=conn)
            for row in conn.execute(sa.select(table)):
                text = repr(tuple(row)).lower()
                found += [(name, text) for n in needles if n.lower() in text]
    return found


def _stranger_table(env: Env, email: str) -> None:
    """A table another part of eventsync might add later, holding the address."""
    store = env.engine.store
    md = sa.MetaData(schema=store.tables.schema)
    table = sa.Table(
        f"{store.tables.prefix}later_feature",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("note", sa.Text),
    )
    with store.engine.begin() as conn:
        md.create_all(conn)
        conn.execute(table.insert(), [{"note": f"seen {email.upper()}"}, {"note": "unrelated"}])


def test_forget_removes_every_trace_and_erases_what_eventsync_created(make_env, wait):
    env = make_env(triggers=True, pollers=False)
    # Ada is the CRM's (her Lead and CampaignMember were typed in); eventsync invites her,
    # creating a magic link in Hopin, and exports her registration onto her Lead.
    [member] = env.members(env.campaign(), ["ada@example.com"])
    [link] = wait("the invitation", lambda: env.magic_links("ada@example.com"))
    wait("the write-back", lambda: env.member(member).get("Status") is not None)
    env.hopin_admin("POST", f"/magicLinks/{link.id}/accept")
    # Grace registers on Hopin; eventsync creates her Lead.
    env.register("grace@example.com", headline="Navy")
    wait("Grace's Lead", lambda: [x for x in env.leads() if x.get("Email") == "grace@example.com"])
    assert env.engine.wait_idle(60)
    _stranger_table(env, "grace@example.com")
    assert _traces(env, "grace@example.com")

    result = env.engine.forget("Grace@Example.com")
    assert result.remote["e2e"]["anonymised"] == 1 and result.remote["e2e"]["deleted"] == 0
    assert _traces(env, "grace@example.com") == []
    [grace] = [x for x in env.leads() if x.get("LastName") == ERASED]
    assert grace.get("Email") is None and grace.get("FirstName") is None
    assert grace.get("Company") == ERASED  # required: cannot be emptied

    result = env.engine.forget("ada@example.com", orgs=["e2e"])
    assert result.remote["e2e"]["deleted"] == 1  # the magic link eventsync created
    assert result.remote["e2e"]["not_ours"] >= 1  # her Lead: typed in, left alone
    assert env.magic_links("ada@example.com") == []
    assert [x.get("LastName") for x in env.leads() if x.get("Email") == "ada@example.com"] == [
        "ada"
    ]
    assert _traces(env, "ada@example.com", "grace@example.com") == []
    # The erasures are in the audit trail, without the address or the person's ids.
    erasures = env.engine.store.audit_entries(org="e2e", flow="forget")
    assert [e.operation for e in erasures] == ["erase", "erase"]
    assert all(e.entity == "" and e.object == "person" for e in erasures)
    assert _traces(env, link.id, member) == []


def test_forget_resumes_after_a_remote_failure(make_env, wait):
    env = make_env(triggers=True, pollers=False)
    env.register("hedy@example.com", headline="Inventor")
    wait(
        "Hedy's Lead",
        lambda: env.sf_query("Lead", ("Id",), Filter("Email", "=", "hedy@example.com")),
    )
    assert env.engine.wait_idle(60)
    env.sf_admin("POST", "/faults", {"endpoint": "collections", "status": 503})
    with pytest.raises(RetryableError):
        env.engine.forget("hedy@example.com")
    # Nothing half-done: the request (the only row with the address) waits to be resumed.
    assert {t for t, _ in _traces(env, "hedy@example.com")} >= {"forget_requests"}
    env.sf_admin("DELETE", "/faults")
    result = env.engine.forget("hedy@example.com")
    assert result.resumed and result.remote["e2e"]["anonymised"] == 1
    assert _traces(env, "hedy@example.com") == []
    assert env.sf_query("Lead", ("Id",), Filter("Email", "=", "hedy@example.com")) == []


def test_forget_command_deletes_per_policy(make_env, wait, tmp_path):
    env = make_env(triggers=False, pollers=False, start=False)
    write_cli_config(
        env, tmp_path, extra='\n[orgs.e2e.erasure]\ncrm = "delete"\nplatform = "anonymise"\n'
    )
    result = run_cli(tmp_path, "forget", "not-an-address")
    assert result.returncode == 2 and "not an email address" in result.stderr, result.stderr
    result = run_cli(tmp_path, "forget", "x@example.com", "--org", "nosuch")
    assert result.returncode == 2 and "unknown organisation" in result.stderr, result.stderr
    # A Lead eventsync created, recorded in the command's own state.
    env.register("joan@example.com", headline="Pilot")
    result = run_cli(tmp_path, "backfill", "export_registrations")
    assert result.returncode == 0, result.stdout + result.stderr
    assert env.sf_query("Lead", ("Id",), Filter("Email", "=", "joan@example.com"))

    result = run_cli(tmp_path, "forget", "joan@example.com", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["remote"]["e2e"]["deleted"] == 1 and "joan" not in result.stdout
    assert env.sf_query("Lead", ("Id",), Filter("Email", "=", "joan@example.com")) == []
    result = run_cli(tmp_path, "audit", "--flow", "forget", "--json")
    assert [e["operation"] for e in json.loads(result.stdout)["entries"]] == ["erase"]

    # A magic link eventsync created can be neither changed nor kept anonymous on Hopin: with
    # platform = "anonymise" it is reported as unchangeable, and the state is purged anyway.
    [member] = env.members(env.campaign(), ["ida@example.com"])
    result = run_cli(tmp_path, "backfill", "import_registrations")
    assert result.returncode == 0, result.stdout + result.stderr
    assert env.magic_links("ida@example.com")
    result = run_cli(tmp_path, "forget", "ida@example.com", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["remote"]["e2e"]["unchangeable"] == 1
    state = sa.create_engine(f"sqlite:///{tmp_path / 'cli.sqlite'}")
    with state.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            rows = conn.execute(sa.text(f'SELECT * FROM "{name}"')).fetchall()
            text = repr(rows).lower()
            assert "ida@example.com" not in text and member.lower() not in text, name
    state.dispose()
