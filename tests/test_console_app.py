"""The setup console through Flask's test client, against the sandboxes over real sockets:
sign-in on every route, CSRF on every form, secrets write-only, ``check``'s own messages for a
bad mapping, concurrent edits, comments kept, and ``--create-admin`` in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from click.testing import CliRunner
from eventsync.cli import cli
from eventsync.console import create_app
from eventsync.console.accounts import ADMIN_HASH, create_admin
from eventsync.console.app import PUBLIC_ENDPOINTS
from eventsync.console.document import STALE

PASSWORD = "correct horse battery staple"
COMMENT = "# kept by every save: the console edits the file round-trip"


def _config(tmp_path: Path, pair: Any, flows: dict[str, Any] | None = None) -> Path:
    """A config file for the sandboxes (secrets in the secrets file), with a comment."""
    org = pair.org_data(flows=flows or {}, poll_interval=60.0)
    data = {
        "engine": {"state": "state.sqlite", "secrets_file": "secrets.env"},
        "orgs": {pair.org: org},
    }
    path = tmp_path / "eventsync.toml"
    path.write_text(f"{COMMENT}\n{tomli_w.dumps(data)}", encoding="utf-8")
    (tmp_path / "secrets.env").write_text(
        "".join(f"{k}='{v}'\n" for k, v in pair.secrets().items()), encoding="utf-8"
    )
    return path


@pytest.fixture
def config_path(tmp_path: Path, acme_pair: Any) -> Path:
    path = _config(tmp_path, acme_pair)
    create_admin(path, "admin", PASSWORD)
    return path


@pytest.fixture
def app(config_path: Path) -> Any:
    app = create_app(config_path, secure_cookies=False)
    app.config["TESTING"] = True
    return app


def _token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def _fingerprint(html: str) -> str:
    match = re.search(r'name="fingerprint"[^>]*value="([^"]*)"', html)
    assert match, "no fingerprint on the page"
    return match.group(1)


def _form(page: str) -> dict[str, str]:
    """What a browser posts with a settings form: its CSRF token and the file's fingerprint."""
    return {"csrf_token": _token(page), "fingerprint": _fingerprint(page)}


def _sign_in(client: Any) -> None:
    page = client.get("/signin").get_data(as_text=True)
    answer = client.post(
        "/signin", data={"csrf_token": _token(page), "username": "admin", "password": PASSWORD}
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)


def _urls(app: Any, org: str) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) of every rule, its arguments filled in."""
    values = {
        "org": org,
        "system": "hopin",
        "flow": "export_registrations",
        "plugin": "pardot_guard",
        "dead_id": 1,
        "filename": "console.css",
    }
    found = []
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            url = url_for(rule.endpoint, **{a: values[a] for a in rule.arguments})
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                found.append((rule.endpoint, method, url))
    return found


def test_every_route_but_sign_in_and_static_redirects_to_sign_in(app: Any) -> None:
    client = app.test_client()
    urls = _urls(app, "acme")
    assert len({e for e, _, _ in urls}) >= 10  # every blueprint registered
    for endpoint, method, url in urls:
        answer = client.open(url, method=method)
        if endpoint in PUBLIC_ENDPOINTS:
            assert answer.status_code in (200, 400), (endpoint, method, answer.status_code)
            continue
        assert answer.status_code == 302, (endpoint, method, url, answer.status_code)
        assert answer.headers["Location"].startswith("/signin"), (endpoint, answer.headers)


def test_a_wrong_password_is_refused_and_a_foreign_next_is_not_followed(app: Any) -> None:
    client = app.test_client()
    page = client.get("/signin").get_data(as_text=True)
    wrong = client.post(
        "/signin", data={"csrf_token": _token(page), "username": "admin", "password": "nope"}
    )
    assert "wrong username or password" in wrong.get_data(as_text=True)
    assert client.get("/orgs").status_code == 302
    page = client.get("/signin").get_data(as_text=True)
    answer = client.post(
        "/signin?next=//evil.example/x",
        data={"csrf_token": _token(page), "username": "admin", "password": PASSWORD},
    )
    assert answer.headers["Location"] == "/orgs"


def test_every_form_without_a_csrf_token_is_refused(app: Any) -> None:
    client = app.test_client()
    _sign_in(client)
    posts = [(e, u) for e, m, u in _urls(app, "acme") if m == "POST"]
    assert {"auth.signin", "auth.signout", "dashboard.retry", "guide.flow"} <= {e for e, _ in posts}
    for endpoint, url in posts:
        answer = client.post(url, data={"action": "done", "name": "x"})
        assert answer.status_code == 400, (endpoint, answer.status_code)
        assert "CSRF" in answer.get_data(as_text=True), endpoint
    assert client.get("/orgs").status_code == 200  # still signed in: nothing was done


def test_session_cookie_flags(config_path: Path) -> None:
    app = create_app(config_path, secure_cookies=True)
    client = app.test_client()
    page = client.get("/signin", base_url="https://localhost").get_data(as_text=True)
    answer = client.post(
        "/signin",
        base_url="https://localhost",
        headers={"Referer": "https://localhost/signin"},
        data={"csrf_token": _token(page), "username": "admin", "password": PASSWORD},
    )
    cookie = answer.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie


def test_a_saved_secret_is_never_rendered_back(app: Any, config_path: Path, acme_pair: Any) -> None:
    import tomllib

    variable = tomllib.loads(config_path.read_text(encoding="utf-8"))["orgs"]["acme"]["systems"][
        "hopin"
    ]["api_key_env"]
    key = acme_pair.secrets()[variable]
    secrets_file = config_path.parent / "secrets.env"
    kept = [line for line in secrets_file.read_text().splitlines() if variable not in line]
    secrets_file.write_text("\n".join(kept) + "\n", encoding="utf-8")  # the key is not set
    client = app.test_client()
    _sign_in(client)
    page = client.get("/orgs/acme/systems/hopin").get_data(as_text=True)
    assert re.search(r'name="api_key_env"', page) and 'class="secret-state unset"' in page
    answer = client.post(
        "/orgs/acme/systems/hopin",
        data={
            **_form(page),
            "action": "save",
            "api_key_env": key,
            **{k: v for k, v in acme_pair.options("hopin").items() if not k.endswith("_env")},
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    saved = secrets_file.read_text(encoding="utf-8")
    assert f"{variable}='{key}'" in saved  # the typed key, under the variable the file names
    admin_hash = re.search(rf"{ADMIN_HASH}='([^']+)'", saved).group(1)  # type: ignore[union-attr]
    pages = 0
    for _, method, url in _urls(app, "acme"):
        for system in ("hopin", "salesforce"):
            if method != "GET":
                continue
            html = client.get(url.replace("/hopin", f"/{system}")).get_data(as_text=True)
            pages += 1
            assert key not in html and admin_hash not in html, url
    assert pages >= 8
    again = client.get("/orgs/acme/systems/hopin").get_data(as_text=True)
    assert re.search(r'class="secret-state set">set<', again)


def test_a_bad_mapping_is_refused_with_the_messages_of_check(
    app: Any, config_path: Path, tmp_path: Path
) -> None:
    client = app.test_client()
    _sign_in(client)
    before = config_path.read_text(encoding="utf-8")
    url = "/orgs/acme/flows/export_registrations"
    page = client.get(url).get_data(as_text=True)
    form = {
        **_form(page),
        "action": "done",
        "target_object": "Lead",
        "match_key": "Email",
        "fields-0-target": "Email",
        "fields-0-kind": "source",
        "fields-0-value": "email",
        "fields-0-transforms": "no_such_transform",
        "fields-1-target": "LastName",
        "fields-1-kind": "source",
        "fields-1-value": "lastName",
        "fields-1-policy": "sometimes",
    }
    html = client.post(url, data=form).get_data(as_text=True)
    assert config_path.read_text(encoding="utf-8") == before  # refused: nothing written
    # The same edit in a file, checked by `eventsync check --offline --json`.
    copy = tmp_path / "copy" / "eventsync.toml"
    copy.parent.mkdir()
    (copy.parent / "secrets.env").write_text("", encoding="utf-8")
    bad = before + (
        '\n[orgs.acme.flows.export_registrations]\ntarget_object = "Lead"\n'
        'match_key = "Email"\n'
        '[[orgs.acme.flows.export_registrations.fields]]\ntarget = "Email"\nsource = "email"\n'
        'transforms = ["no_such_transform"]\n'
        '[[orgs.acme.flows.export_registrations.fields]]\ntarget = "LastName"\n'
        'source = "lastName"\npolicy = "sometimes"\n'
    )
    copy.write_text(bad, encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", "--offline", "--json", "--config", str(copy)])
    expected = json.loads(result.output)["configuration_problems"]
    assert expected, result.output
    refused = re.findall(r'<li class="problem">(.*?)</li>', html, re.S)
    import html as markup

    assert [markup.unescape(p) for p in refused] == expected


def test_a_concurrent_edit_is_detected_and_nothing_is_overwritten(
    app: Any, config_path: Path
) -> None:
    client = app.test_client()
    _sign_in(client)
    url = "/orgs/acme/flows/magic_links"
    page = client.get(url).get_data(as_text=True)
    edited = config_path.read_text(encoding="utf-8") + "\n# edited in an editor meanwhile\n"
    config_path.write_text(edited, encoding="utf-8")
    html = client.post(
        url,
        data={
            **_form(page),
            "action": "done",
            "link_field": "Hopin_Magic_Link__c",
        },
    ).get_data(as_text=True)
    assert STALE in html
    assert config_path.read_text(encoding="utf-8") == edited


def test_done_saves_keeping_comments_and_skip_turns_a_flow_off(app: Any, config_path: Path) -> None:
    client = app.test_client()
    _sign_in(client)
    url = "/orgs/acme/flows/magic_links"
    page = client.get(url).get_data(as_text=True)
    html = client.post(
        url,
        data={
            **_form(page),
            "action": "done",
            "link_field": "Hopin_Magic_Link__c",
            "status_field": "Hopin_Status__c",
        },
    ).get_data(as_text=True)
    assert "saved" in html, html
    text = config_path.read_text(encoding="utf-8")
    assert text.startswith(COMMENT + "\n")
    assert 'link_field = "Hopin_Magic_Link__c"' in text
    page = client.get("/orgs/acme/flows/attendance").get_data(as_text=True)
    client.post(
        "/orgs/acme/flows/attendance",
        data={**_form(page), "action": "skip"},
    )
    import tomllib

    data = tomllib.loads(config_path.read_text(encoding="utf-8"))
    assert data["orgs"]["acme"]["flows"]["attendance"] == {"enabled": False}
    assert config_path.read_text(encoding="utf-8").startswith(COMMENT + "\n")
    overview = client.get("/orgs/acme").get_data(as_text=True)
    assert re.search(r"Attendance</a>\s*<span class=\"state\">skipped", overview)


def test_a_flow_outside_the_plan_is_not_editable(app: Any, config_path: Path) -> None:
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(
        text.replace(
            "[orgs.acme]", '[entitlements]\nbasic = ["export_registrations"]\n\n[orgs.acme]'
        ).replace('plan = "business"', 'plan = "basic"'),
        encoding="utf-8",
    )
    client = app.test_client()
    _sign_in(client)
    html = client.get("/orgs/acme/flows/attendance").get_data(as_text=True)
    assert "plan does not include Attendance" in html and 'value="done"' not in html


def test_create_admin_in_a_subprocess(tmp_path: Path) -> None:
    path = tmp_path / "new.toml"
    command = [str(Path(sys.executable).with_name("eventsync")), "console", "--config", str(path)]
    env = {**os.environ, "EVENTSYNC_CONSOLE_PASSWORD": "short"}
    refused = subprocess.run(
        [*command, "--create-admin"], env=env, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2 and "at least 12 characters" in refused.stderr
    assert "Traceback" not in refused.stderr
    env["EVENTSYNC_CONSOLE_PASSWORD"] = PASSWORD
    made = subprocess.run(
        [*command, "--create-admin", "--username", "ops"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    secrets = (tmp_path / "eventsync.secrets").read_text(encoding="utf-8")
    assert "EVENTSYNC_CONSOLE_ADMIN='ops'" in secrets and PASSWORD not in secrets
    assert 'secrets_file = "eventsync.secrets"' in path.read_text(encoding="utf-8")
    assert oct((tmp_path / "eventsync.secrets").stat().st_mode & 0o777) == "0o600"
    app = create_app(path, secure_cookies=False)
    client = app.test_client()
    page = client.get("/signin").get_data(as_text=True)
    answer = client.post(
        "/signin", data={"csrf_token": _token(page), "username": "ops", "password": PASSWORD}
    )
    assert answer.status_code == 302 and client.get("/orgs").status_code == 200


def test_the_oauth_callback_refuses_a_state_this_session_did_not_start(app: Any) -> None:
    client = app.test_client()
    _sign_in(client)
    answer = client.get("/oauth/callback?code=abc&state=forged")
    assert answer.status_code == 400 and "state" in answer.get_data(as_text=True)
    with client.session_transaction() as session:
        session["oauth_pending"] = {"state": "expected", "org": "acme", "system": "salesforce"}
    answer = client.get("/oauth/callback?code=abc&state=forged")
    assert answer.status_code == 400
    with client.session_transaction() as session:
        assert "oauth_pending" not in session  # a refused state cannot be tried again
    # The right state, but no verifier held for it (another console process, or expired).
    with client.session_transaction() as session:
        session["oauth_pending"] = {"state": "expected", "org": "acme", "system": "salesforce"}
    answer = client.get("/oauth/callback?code=abc&state=expected", follow_redirects=True)
    assert "this sign-in expired or was started by another console process" in answer.get_data(
        as_text=True
    )


def test_connect_sends_the_browser_to_the_authorize_page_keeping_the_verifier_server_side(
    app: Any, acme_pair: Any
) -> None:
    """Needs the Salesforce plugin's oauth_start (the ``oauth`` branch)."""
    client = app.test_client()
    _sign_in(client)
    page = client.get("/orgs/acme/systems/salesforce").get_data(as_text=True)
    assert 'value="oauth"' in page  # the plugin has an interactive sign-in
    console_app = acme_pair.crm.info()["oauth"]["console_app"]
    answer = client.post(
        "/orgs/acme/systems/salesforce",
        data={
            **_form(page),
            "action": "oauth",
            "login_url": acme_pair.options("salesforce")["login_url"],
            "client_id": console_app["client_id"],
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    location = answer.headers["Location"]
    assert location.startswith(acme_pair.options("salesforce")["login_url"])
    assert "/services/oauth2/authorize?" in location and "code_challenge=" in location
    assert "redirect_uri=http%3A%2F%2Flocalhost%2Foauth%2Fcallback" in location
    with client.session_transaction() as session:
        pending = dict(session["oauth_pending"])
    assert set(pending) == {"state", "org", "system"}  # no verifier in the (readable) cookie
    assert f"state={pending['state']}" in location
    # The verifier is held in the console process, once, for that state.
    console_state = app.extensions["eventsync_console"]
    verifier = console_state.take_verifier(pending["state"])
    assert (
        verifier
        and verifier not in location
        and console_state.take_verifier(pending["state"]) is None
    )


def test_the_dashboard_lists_a_dead_letter_and_retry_moves_it_back(
    app: Any, config_path: Path
) -> None:
    from eventsync.config import load_config
    from eventsync.engine import Engine
    from eventsync.models import RemoteFailure

    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(
        text + '\n[orgs.acme.flows.magic_links]\nlink_field = "Hopin_Magic_Link__c"\n',
        encoding="utf-8",
    )
    with Engine(load_config(config_path), pollers=False, subscribe=False) as engine:
        engine.store.mark("acme", "magic_links", "00vDEAD0000001")
        [item] = engine.store.lease("test", org="acme", flow="magic_links")
        failure = RemoteFailure("FIELD_CUSTOM_VALIDATION_EXCEPTION", "refused by a rule")
        assert engine.store.fail(item, failure, retryable=False) == "dead"
    client = app.test_client()
    _sign_in(client)
    html = client.get("/orgs/acme/dashboard").get_data(as_text=True)
    assert "00vDEAD0000001" in html and "refused by a rule" in html
    traced = client.get(
        "/orgs/acme/dashboard?flow=magic_links&entity=00vDEAD0000001&values=y"
    ).get_data(as_text=True)
    assert 'class="trace"' in traced and "dead letter" in traced and "refused by a rule" in traced
    dead_id = re.search(r"/orgs/acme/dead-letters/(\d+)/retry", html).group(1)  # type: ignore[union-attr]
    no_token = client.post(f"/orgs/acme/dead-letters/{dead_id}/retry")
    assert no_token.status_code == 400
    answer = client.post(
        f"/orgs/acme/dead-letters/{dead_id}/retry", data={"csrf_token": _token(html)}
    )
    assert answer.status_code == 302
    after = client.get("/orgs/acme/dashboard").get_data(as_text=True)
    assert "1 dead letter moved back to the outbox" in after
    assert f"/dead-letters/{dead_id}/retry" not in after
    with Engine(load_config(config_path), pollers=False, subscribe=False) as engine:
        assert engine.store.outbox_row("acme", "magic_links", "00vDEAD0000001") is not None
        assert engine.store.dead_letter_count("acme") == 0


def test_run_check_shows_the_findings_of_eventsync_check(app: Any, config_path: Path) -> None:
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(
        text
        + "\n[orgs.acme.flows.magic_links]\n"
        + 'crm_object = "CampaignMember"\nlink_field = "No_Such_Field__c"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["check", "--json", "--config", str(config_path)])
    expected = [f["message"] for f in json.loads(result.output)["findings"]]
    assert any("No_Such_Field__c" in m for m in expected), expected
    client = app.test_client()
    _sign_in(client)
    page = client.get("/orgs/acme/dashboard").get_data(as_text=True)
    html = client.post("/orgs/acme/check", data={"csrf_token": _token(page)}).get_data(as_text=True)
    import html as markup

    shown = [
        markup.unescape(m)
        for m in re.findall(r"<tr class=\"\w+\"><td>\w+</td><td>[^<]*</td><td>(.*?)</td>", html)
    ]
    assert shown == expected


def test_the_run_server_mounts_the_console_at_console(config_path: Path) -> None:
    from eventsync.config import load_config
    from eventsync.engine import Engine
    from eventsync.server import make_app

    with Engine(load_config(config_path), pollers=False, subscribe=False) as engine:
        client = make_app(engine).test_client()
        answer = client.get("/console/orgs")
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/console/signin")
        assert client.get("/console/signin").status_code == 200
        assert client.get("/livez").status_code == 200
        missing = client.get("/no/such/route")
        assert missing.status_code == 404 and missing.content_type.startswith("text/plain")
        # The cookie is Secure unless the server listens on loopback only.
        for listen, secure in (("127.0.0.1:8080", False), ("0.0.0.0:8080", True)):
            # The notification route is in front (its ``app``), the console mounted behind it.
            front = make_app(engine, listen=listen).wsgi_app
            mounted = front.app.mounts["/console"]  # type: ignore[attr-defined]
            assert mounted.config["SESSION_COOKIE_SECURE"] is secure, listen


def test_a_plugin_options_form_is_rendered_from_its_declared_schema(
    app: Any, config_path: Path
) -> None:
    text = config_path.read_text(encoding="utf-8")
    enabled = 'plugins = ["salesforce", "hopin", "pardot_guard"]'
    config_path.write_text(re.sub(r"plugins = \[[^\]]*\]", enabled, text), encoding="utf-8")
    assert "pardot_guard" in config_path.read_text(encoding="utf-8")
    client = app.test_client()
    _sign_in(client)
    overview = client.get("/orgs/acme").get_data(as_text=True)
    assert "/orgs/acme/plugins/pardot_guard" in overview
    page = client.get("/orgs/acme/plugins/pardot_guard").get_data(as_text=True)
    assert 'name="confirmed_opt_in"' in page and 'name="consent_field"' in page
    answer = client.post(
        "/orgs/acme/plugins/pardot_guard",
        data={
            **_form(page),
            "confirmed_opt_in": "on",
            "check_opt_out": "on",
            "admit_unknown_people": "on",
            "consent_field": "Consent__c",
            "opt_out_field": "HasOptedOutOfEmail",
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    import tomllib

    saved = tomllib.loads(config_path.read_text(encoding="utf-8"))
    # Only what differs from the declared defaults is written.
    assert saved["orgs"]["acme"]["plugin_options"]["pardot_guard"] == {
        "confirmed_opt_in": True,
        "consent_field": "Consent__c",
    }


def test_the_import_screen_offers_relationship_fields_and_saves_a_source_filter(
    app: Any, config_path: Path
) -> None:
    import tomllib

    from eventsync_salesforce.sandbox.wiring import TICKET_CODE_FIELD

    client = app.test_client()
    _sign_in(client)
    url = "/orgs/acme/flows/import_registrations"
    page = client.get(url).get_data(as_text=True)
    # The picker offers the code field on the Campaign, reached through CampaignMember.CampaignId.
    assert f'<option value="Campaign.{TICKET_CODE_FIELD}">' in page
    assert '<option value="CampaignMember">' in page
    answer = client.post(
        url,
        data={
            **_form(page),
            "action": "done",
            "source_object": "CampaignMember",
            "ticket_code_field": f"Campaign.{TICKET_CODE_FIELD}",
            "source_filter-0-field": "Status",
            "source_filter-0-op": "!=",
            "source_filter-0-value": "Removed",
            "source_filter-1-field": "Email",
            "source_filter-1-op": "not_empty",
        },
    ).get_data(as_text=True)
    assert "Import registrations: saved" in answer, answer
    table = tomllib.loads(config_path.read_text(encoding="utf-8"))["orgs"]["acme"]["flows"][
        "import_registrations"
    ]
    assert table["source_filter"] == [
        {"field": "Status", "op": "!=", "value": "Removed"},
        {"field": "Email", "op": "not_empty"},
    ]
    assert table["ticket_code_field"] == f"Campaign.{TICKET_CODE_FIELD}"


def test_a_file_that_is_not_toml_is_named_with_its_problem(app: Any, config_path: Path) -> None:
    client = app.test_client()
    _sign_in(client)
    config_path.write_text(config_path.read_text(encoding="utf-8") + "\n[orgs.acme\n")
    answer = client.get("/orgs")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 500 and "invalid TOML" in html and "Traceback" not in html


def test_failed_sign_ins_are_throttled(app: Any) -> None:
    from eventsync.console.throttle import LIMIT, WINDOW, SignInThrottle

    now = [1000.0]
    app.extensions["eventsync_console_throttle"] = SignInThrottle(clock=lambda: now[0])
    client = app.test_client()

    def attempt(password: str) -> Any:
        page = client.get("/signin").get_data(as_text=True)
        return client.post(
            "/signin",
            data={"csrf_token": _token(page), "username": "admin", "password": password},
        )

    for _ in range(LIMIT):
        assert "wrong username or password" in attempt("guess").get_data(as_text=True)
    refused = attempt(PASSWORD)
    assert refused.status_code == 200 and "too many failed sign-ins" in refused.get_data(
        as_text=True
    )
    assert client.get("/orgs").status_code == 302  # not signed in
    now[0] += WINDOW
    assert attempt(PASSWORD).status_code == 302
    assert client.get("/orgs").status_code == 200


def test_comments_inside_the_edited_table_survive_its_save(app: Any, config_path: Path) -> None:
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(
        text + "\n# Write the magic link back to the CampaignMember.\n"
        "[orgs.acme.flows.magic_links]\n"
        'crm_object = "CampaignMember"  # the invitation object\n'
        'link_field = "Old_Link__c"\n',
        encoding="utf-8",
    )
    client = app.test_client()
    _sign_in(client)
    url = "/orgs/acme/flows/magic_links"
    page = client.get(url).get_data(as_text=True)
    assert 'value="Old_Link__c"' in page
    html = client.post(
        url,
        data={
            **_form(page),
            "action": "done",
            "crm_object": "CampaignMember",
            "link_field": "Hopin_Magic_Link__c",
        },
    ).get_data(as_text=True)
    assert "saved" in html, html
    after = config_path.read_text(encoding="utf-8")
    assert (
        "# Write the magic link back to the CampaignMember.\n[orgs.acme.flows.magic_links]" in after
    )
    assert 'crm_object = "CampaignMember"  # the invitation object' in after
    assert 'link_field = "Hopin_Magic_Link__c"' in after and "Old_Link__c" not in after
