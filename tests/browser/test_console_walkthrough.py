"""The guide's whole procedure through the console, in Chromium, against the sandboxes.

Sign in; create the organisation; connect Salesforce through the sandbox's OAuth login and
consent pages; connect Hopin with its API key; map the export fields; choose the integration
code field on Campaign; set the magic link field; skip attendance. The console then stops and
``eventsync run`` starts on the saved file (the engine reads its file at start: docs/console.md),
with the console mounted at /console: a CampaignMember created in Salesforce shows its magic link
in the dashboard's trace, and a registration exported shows in recent activity. Each screen is
saved as a screenshot (``make screenshots`` writes them to docs/screenshots).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from dotenv import dotenv_values
from eventsync.models import PullRequest, PushItem, PushRequest
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import free_port, start_sandboxes
from eventsync.waiting import wait_until
from eventsync_salesforce.sandbox.wiring import LINK_FIELD, STATUS_FIELD, TICKET_CODE_FIELD

PASSWORD = "walkthrough-password-1"
#: Generous: the machine running CI is loaded.
DEADLINE = 90.0


def _eventsync(*args: str) -> list[str]:
    """The command line of `eventsync ARGS` from this virtualenv."""
    return [str(Path(sys.executable).with_name("eventsync")), *args]


@pytest.fixture
def pair() -> Iterator[Any]:
    hooks = Hooks(make_plugin_manager(environ={}))
    port = free_port()
    started = start_sandboxes(
        hooks,
        crm="salesforce",
        platform="hopin",
        org="acme",
        endpoint=f"http://127.0.0.1:{port}",
        registrations=2,  # for the preview of the export screen's Test
    )
    yield started
    started.stop()


class Process:
    """An ``eventsync`` subprocess, stopped (SIGTERM, then killed) at the end."""

    def __init__(self, args: list[str], cwd: Path, log: Path) -> None:
        self.log = log
        self.handle = subprocess.Popen(
            args, cwd=cwd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=dict(os.environ)
        )

    def wait_serving(self, url: str) -> None:
        def up() -> bool:
            assert self.handle.poll() is None, self.log.read_text()
            try:
                return requests.get(url, timeout=5).status_code < 500
            except requests.ConnectionError:
                return False

        wait_until(f"{url} to answer", up, timeout=DEADLINE, interval=0.2)

    def stop(self) -> None:
        if self.handle.poll() is None:
            self.handle.terminate()
            try:
                self.handle.wait(30)
            except subprocess.TimeoutExpired:
                self.handle.kill()
                self.handle.wait(10)


def _port(pair: Any) -> int:
    """The port ``eventsync run`` listens on: the one the sandboxes notify."""
    return int(str(pair.endpoint).rsplit(":", 1)[1])


def _fill(page: Any, name: str, value: Any) -> None:
    field = page.locator(f'[name="{name}"]')
    if field.evaluate("e => e.tagName") == "SELECT":
        field.select_option(str(value))
    else:
        field.fill(str(value))


def _sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/console/")
    if "/signin" in page.url:
        page.fill("#username", "admin")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
    page.wait_for_selector("text=Organisations")


def _page_has(page: Any, url: str, text: str) -> bool:
    page.goto(url)
    return text in page.content()


def test_the_guide_through_the_console(page: Any, screenshot: Any, pair: Any, tmp_path: Path):
    config = tmp_path / "eventsync.toml"
    config.write_text(
        "# eventsync configuration, set up through the console\n\n[engine]\n"
        f'state = "state.sqlite"\nlisten = "127.0.0.1:{_port(pair)}"\n'
        'secrets_file = "secrets.env"\n',
        encoding="utf-8",
    )
    made = subprocess.run(
        _eventsync("console", "--config", str(config), "--create-admin"),
        env={**os.environ, "EVENTSYNC_CONSOLE_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    console_port = free_port()
    console_base = f"http://127.0.0.1:{console_port}"
    console = Process(
        _eventsync("console", "--config", str(config), "--listen", f"127.0.0.1:{console_port}"),
        tmp_path,
        tmp_path / "console.log",
    )
    try:
        console.wait_serving(f"{console_base}/console/signin")
        page.goto(f"{console_base}/console/")
        assert "/console/signin" in page.url
        screenshot("01-sign-in")
        _sign_in(page, console_base)

        # Choose or create the organisation.
        page.fill("#name", "acme")
        page.select_option("#plan", "business")
        page.select_option("#crm", "salesforce")
        page.select_option("#event_platform", "hopin")
        screenshot("02-organisations")
        page.click('button:has-text("Create")')
        page.wait_for_selector("text=acme: setup")
        screenshot("03-setup")

        # Connect Salesforce: OAuth through the sandbox's login and consent pages.
        sf = pair.options("salesforce")
        oauth = pair.crm.info()["oauth"]
        page.click("text=Connect Salesforce")
        for name in ("login_url", "ca_bundle", "org_id", "api_version"):
            _fill(page, name, sf[name])
        _fill(page, "client_id", oauth["console_app"]["client_id"])
        _fill(page, "outbound_token_env", pair.secrets()["SF_OUTBOUND_TOKEN"])
        screenshot("04-connect-salesforce")
        page.click("button[value=oauth]")
        page.wait_for_selector("#username")
        page.fill("#username", oauth["username"])
        page.fill("#password", oauth["password"])
        screenshot("05-salesforce-login")
        page.click("#Login")
        page.wait_for_selector("#oaapprove")
        page.click("#oaapprove")
        page.wait_for_selector("text=connected as")
        assert "/console/orgs/acme" in page.url

        # Connect Hopin with its API key, checked on save.
        hopin = pair.options("hopin")
        page.click("text=Connect Hopin")
        for name, value in hopin.items():
            if name.endswith("_env"):
                _fill(page, name, pair.secrets()[value])
            elif page.locator(f'[name="{name}"]').count():
                _fill(page, name, value)
        screenshot("06-connect-hopin")
        page.click("button[value=save]")
        page.wait_for_load_state()
        assert "connected and saved" in page.content(), page.content()

        # Export registrations: the object, first/last name and email, one more mapping.
        page.click("text=Export registrations")
        _fill(page, "target_object", "Lead")
        _fill(page, "match_key", "Email")
        _fill(page, "poll_interval", "2")
        for index, (target, source) in enumerate(
            [("FirstName", "firstName"), ("LastName", "lastName")]
        ):
            _fill(page, f"fields-{index}-target", target)
            _fill(page, f"fields-{index}-value", source)
            page.click("text=Add new mapping")
        _fill(page, "fields-2-target", "Email")
        _fill(page, "fields-2-value", "email")
        _fill(page, "fields-2-transforms", "strip, lower")
        page.click("text=Add new mapping")
        _fill(page, "fields-3-target", "Company")
        _fill(page, "fields-3-kind", "constant")
        _fill(page, "fields-3-value", "Hopin attendee")
        _fill(page, "fields-3-policy", "on_create")
        page.click("button[value=test]")
        page.wait_for_selector("#test-result")
        assert '<tr class="error">' not in page.inner_html("#test-result"), page.content()
        # The preview: both seeded registrations would become Leads, with the constant.
        actions = page.locator(".preview td.action").all_inner_texts()
        assert actions == ["create", "create"], page.inner_html("#test-result")
        assert "Hopin attendee" in page.inner_html(".preview")
        screenshot("07-export-registrations")
        page.click("button[value=done]")
        page.wait_for_selector("text=Export registrations: saved")
        screenshot("08-done")
        page.click("text=Back to the setup")

        # Import registrations: the integration code field on the Campaign.
        page.click("text=Import registrations")
        _fill(page, "source_object", "CampaignMember")
        _fill(page, "ticket_code_field", f"Campaign.{TICKET_CODE_FIELD}")
        _fill(page, "poll_interval", "2")
        page.click("button[value=test]")
        page.wait_for_selector("#test-result")
        assert '<tr class="error">' not in page.inner_html("#test-result"), page.content()
        screenshot("09-import-registrations")
        page.click("button[value=done]")
        page.wait_for_selector("text=Import registrations: saved")
        page.click("text=Back to the setup")

        # The registration object's magic link and status fields.
        page.click("text=Registration object: magic link and status")
        _fill(page, "link_field", LINK_FIELD)
        _fill(page, "status_field", STATUS_FIELD)
        _fill(page, "poll_interval", "2")
        screenshot("10-magic-links")
        page.click("button[value=done]")
        page.wait_for_selector("text=saved")
        page.click("text=Back to the setup")

        # Attendance is skipped: the flow stays off.
        page.click("text=Attendance")
        screenshot("11-attendance")
        page.click("button[value=skip]")
        page.wait_for_selector("text=the flow is off")
        assert "The file is valid" in page.content(), page.content()
        screenshot("12-setup-finished")

        # No secret saved on the way (refresh token, keys, the admin's hash) is on any screen.
        saved = dotenv_values(tmp_path / "secrets.env")
        saved.pop("EVENTSYNC_CONSOLE_ADMIN")  # the admin's name, shown beside "sign out"
        assert saved.get("ACME_SALESFORCE_REFRESH_TOKEN"), saved.keys()
        for path in (
            "/orgs/acme",
            "/orgs/acme/systems/salesforce",
            "/orgs/acme/systems/hopin",
            "/orgs/acme/flows/export_registrations",
            "/orgs/acme/flows/import_registrations",
            "/orgs/acme/dashboard",
        ):
            page.goto(f"{console_base}/console{path}")
            html = page.content()
            assert not [k for k, v in saved.items() if v and v in html], path
    finally:
        console.stop()

    text = config.read_text(encoding="utf-8")
    assert text.startswith("# eventsync configuration, set up through the console")
    assert 'grant = "refresh_token"' in text and oauth["password"] not in text

    run = Process(_eventsync("run", "--config", str(config)), tmp_path, tmp_path / "run.log")
    run_base = f"http://127.0.0.1:{_port(pair)}"
    try:
        run.wait_serving(f"{run_base}/livez")
        hooks = Hooks(make_plugin_manager(environ={}))
        crm = hooks.authenticate(pair.crm.settings("acme"))
        platform_info = pair.platform.info()

        def insert(obj: str, row: dict[str, Any]) -> str:
            [result] = hooks.push(crm, PushRequest(obj, "insert", (PushItem("1", row),)))
            assert result.ok, result.error
            return str(result.id)

        campaign = insert(
            "Campaign",
            {"Name": "Console launch", TICKET_CODE_FIELD: platform_info["ticket_integration_code"]},
        )
        lead = insert(
            "Lead", {"LastName": "Invitee", "Company": "Acme", "Email": "invitee@example.com"}
        )
        member = insert("CampaignMember", {"CampaignId": campaign, "LeadId": lead})
        registration = requests.post(
            f"{platform_info['admin_url']}/events/{platform_info['event_id']}/registrations",
            json={
                "ticketId": platform_info["ticket_id"],
                "email": "registrant@example.com",
                "firstName": "Reggie",
                "lastName": "Strant",
            },
            timeout=30,
        ).json()["data"]["id"]

        def link() -> str | None:
            [row] = hooks.pull(
                crm, PullRequest("CampaignMember", ids=(member,), fields=("Id", LINK_FIELD))
            )
            return row.get(LINK_FIELD)

        wait_until("the magic link on the CampaignMember", link, timeout=DEADLINE, interval=0.5)
        magic_link = str(link())

        _sign_in(page, run_base)
        dashboard = f"{run_base}/console/orgs/acme/dashboard"
        wait_until(
            "the exported registration in recent activity",
            lambda: _page_has(page, dashboard, registration),
            timeout=DEADLINE,
            interval=1.0,
        )
        screenshot("13-dashboard")
        page.select_option("#flow", "magic_links")
        page.fill("#entity", member)
        page.check("#values")
        page.click('button:has-text("Trace")')
        page.wait_for_selector(".trace")
        assert magic_link in page.inner_html(".trace"), page.content()
        screenshot("14-trace")
    finally:
        run.stop()
