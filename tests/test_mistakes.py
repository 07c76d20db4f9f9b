"""The operator-mistake catalogue (docs/troubleshooting.md), one case per mistake: each is made
for real (a file, a config against the running sandboxes, a port in use) and the real command
is run in a subprocess. Each must end with a meaningful exit code and one or two lines saying
what is wrong and how to fix it, never a traceback; ``--debug`` shows the traceback."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import requests
import tomli_w
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import SandboxPair, free_port, sandbox_config_files
from eventsync.store import LATEST_VERSION

EVENTSYNC = str(Path(sys.executable).with_name("eventsync"))
PG_URL = os.environ.get(
    "EVENTSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
OK, PROBLEMS, USAGE, UNAVAILABLE = 0, 1, 2, 3


@attrs.frozen
class Sandboxes:
    pair: SandboxPair
    config: dict[str, Any]
    secrets: str

    def sf_fault(self, **fault: Any) -> None:
        sf = self.pair.crm.info()
        requests.post(
            f"{sf['admin_url']}/faults",
            json=fault,
            headers={"X-Admin-Token": sf["admin_token"]},
            verify=sf["ca_bundle"],
            timeout=10,
        ).raise_for_status()

    def clear_faults(self) -> None:
        sf = self.pair.crm.info()
        requests.delete(
            f"{sf['admin_url']}/faults",
            headers={"X-Admin-Token": sf["admin_token"]},
            verify=sf["ca_bundle"],
            timeout=10,
        ).raise_for_status()


@pytest.fixture(scope="module")
def sandboxes(acme_pair: SandboxPair) -> Sandboxes:
    hooks = Hooks(make_plugin_manager(environ={}))
    text, secrets = sandbox_config_files(acme_pair.info(), hooks=hooks, secrets_file="secrets.env")
    return Sandboxes(acme_pair, tomllib.loads(text), secrets)


@attrs.frozen
class Case:
    """A directory with a config, what to change in it, and what to run there."""

    dir: Path
    sandboxes: Sandboxes

    def write(self, config: dict[str, Any], secrets: str | None = None) -> None:
        (self.dir / "eventsync.toml").write_text(tomli_w.dumps(config))
        (self.dir / "secrets.env").write_text(
            self.sandboxes.secrets if secrets is None else secrets
        )


Edit = Callable[[dict[str, Any], Case], Any]


@attrs.frozen
class Mistake:
    """One catalogue entry: the mistake, the command, the exit code and words it must print."""

    id: str
    argv: tuple[str, ...]
    code: int
    says: tuple[str, ...]
    edit: Edit | None = None
    #: Lines allowed on stderr: two, or more when `run` names several findings of one cause.
    max_lines: int = 2


def sf(data: dict[str, Any]) -> dict[str, Any]:
    return data["orgs"]["acme"]["systems"]["salesforce"]


def hopin(data: dict[str, Any]) -> dict[str, Any]:
    return data["orgs"]["acme"]["systems"]["hopin"]


def _set(table: Callable[[dict[str, Any]], dict[str, Any]], **values: Any) -> Edit:
    def edit(data: dict[str, Any], case: Case) -> None:
        table(data).update(values)

    return edit


def _engine(**values: Any) -> Edit:
    return _set(lambda d: d["engine"], **values)


def _login_extra_path(data: dict[str, Any], case: Case) -> None:
    sf(data)["login_url"] += "/services/oauth2"


def _login_closed_port(data: dict[str, Any], case: Case) -> None:
    sf(data)["login_url"] = f"https://127.0.0.1:{free_port()}"


def _hopin_closed_port(data: dict[str, Any], case: Case) -> None:
    hopin(data)["base_url"] = f"http://127.0.0.1:{free_port()}"


def _not_pem(data: dict[str, Any], case: Case) -> None:
    (case.dir / "key.txt").write_text("this is not a PEM private key\n")
    sf(data)["private_key_file"] = "key.txt"  # relative: read next to the config file


def _missing_key_file(data: dict[str, Any], case: Case) -> None:
    sf(data)["private_key_file"] = "no-such-key.pem"


def _expired_refresh_token(data: dict[str, Any], case: Case) -> None:
    table = sf(data)
    table.update(grant="refresh_token", refresh_token_env="SF_REFRESH_TOKEN")
    table.pop("private_key_file")
    table.pop("username")
    case.write(data, case.sandboxes.secrets + "SF_REFRESH_TOKEN=5Aep861expired.token\n")
    return "written"


def _missing_secret(data: dict[str, Any], case: Case) -> None:
    case.write(data, "")
    return "written"


def _newer_store(data: dict[str, Any], case: Case) -> None:
    db = case.dir / "eventsync-sandbox.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description "
            "VARCHAR(200) NOT NULL, applied_at DATETIME NOT NULL)"
        )
        conn.execute(
            "INSERT INTO schema_version VALUES (?, 'from the future', '2030-01-01 00:00:00')",
            (LATEST_VERSION + 1,),
        )


def _state_under_a_file(data: dict[str, Any], case: Case) -> None:
    (case.dir / "not-a-dir").write_text("")
    data["engine"]["state"] = "not-a-dir/state.sqlite"


def _pg_without_tables(data: dict[str, Any], case: Case) -> None:
    schema = f"empty_{os.getpid()}_{case.dir.name[-12:].replace('-', '_')}"
    data["engine"]["state"] = f"{PG_URL}?options=-csearch_path%3D{schema}"


def _missing_permission(data: dict[str, Any], case: Case) -> None:
    case.sandboxes.sf_fault(endpoint="describe", status=403, error_code="INSUFFICIENT_ACCESS")


def _toml_syntax(data: dict[str, Any], case: Case) -> None:
    case.write(data)
    path = case.dir / "eventsync.toml"
    path.write_text(path.read_text().replace('plan = "enterprise"', 'plan = "enterprise'))
    return "written"


def _in_other_dir(data: dict[str, Any], case: Case) -> None:
    (case.dir / "elsewhere").mkdir()
    case.write(data)
    (case.dir / "eventsync.toml").rename(case.dir / "elsewhere" / "eventsync.toml")
    (case.dir / "secrets.env").rename(case.dir / "elsewhere" / "secrets.env")
    return "written"


def _held_port() -> int:
    return HELD.getsockname()[1]


HELD = socket.socket()
HELD.bind(("127.0.0.1", 0))
HELD.listen()

CATALOGUE = [
    Mistake(
        "login-url-with-extra-path",
        ("check", "--json"),
        PROBLEMS,
        ("login_url", "/services/oauth2/token"),
        _login_extra_path,
    ),
    Mistake(
        "login-url-with-extra-path-run",
        ("run",),
        UNAVAILABLE,
        ("not starting", "login_url"),
        _login_extra_path,
    ),
    Mistake(
        "login-url-unreachable",
        ("run",),
        UNAVAILABLE,
        ("connection refused", "login_url"),
        _login_closed_port,
    ),
    Mistake(
        "login-url-not-a-url",
        ("check", "--offline"),
        USAGE,
        ("login_url", "https://login.salesforce.com"),
        _set(sf, login_url="login.salesforce.com"),
    ),
    Mistake(
        "private-key-not-pem",
        ("run",),
        USAGE,
        ("private_key", "PEM"),
        _not_pem,
    ),
    Mistake(
        "private-key-file-missing",
        ("run",),
        USAGE,
        ("private_key_file", "no-such-key.pem"),
        _missing_key_file,
    ),
    Mistake(
        "expired-refresh-token",
        ("run",),
        UNAVAILABLE,
        ("invalid_grant", "expired"),
        _expired_refresh_token,
    ),
    Mistake(
        "salesforce-org-id-malformed",
        ("check", "--offline"),
        USAGE,
        ("org_id",),
        _set(sf, org_id="00D12345"),
    ),
    Mistake(
        "missing-salesforce-permission",
        ("run",),
        USAGE,
        ("INSUFFICIENT_ACCESS",),
        _missing_permission,
        max_lines=3,  # the flows' discovery and pardot_guard's preflight both name it
    ),
    Mistake(
        "hopin-refused-connection",
        ("run",),
        UNAVAILABLE,
        ("connection refused", "base_url"),
        _hopin_closed_port,
    ),
    Mistake(
        "hopin-base-url-without-scheme",
        ("run",),
        USAGE,
        ("base_url: must be an http(s) URL",),
        _set(hopin, base_url="api.hopin.com"),
    ),
    Mistake(
        "hopin-wrong-organization-id",
        ("run",),
        UNAVAILABLE,
        ("organisation nope not reachable", "organization_id"),
        _set(hopin, organization_id="nope"),
    ),
    Mistake(
        "hopin-wrong-event-id",
        ("run",),
        UNAVAILABLE,
        ("event nope not reachable", "event_id"),
        _set(hopin, event_id="nope"),
    ),
    Mistake(
        "hopin-webhook-url-not-http",
        ("run",),
        USAGE,
        ("webhook_url: must be an http(s) URL",),
        _set(hopin, webhook_url="hooks.example.com/hopin"),
    ),
    Mistake(
        "secret-not-set",
        ("run",),
        USAGE,
        ("EVENTSYNC_HOPIN_SANDBOX_API_KEY is not set",),
        _missing_secret,
    ),
    Mistake(
        "secrets-file-missing",
        ("run",),
        USAGE,
        ("secrets_file", "no-such.env", "does not exist"),
        _engine(secrets_file="no-such.env"),
    ),
    Mistake(
        "config-file-missing",
        ("status", "--config", "missing.toml"),
        USAGE,
        ("missing.toml", "eventsync init"),
    ),
    Mistake(
        "config-toml-syntax",
        ("check",),
        USAGE,
        ("invalid TOML", "line"),
        _toml_syntax,
    ),
    Mistake(
        "config-unknown-setting",
        ("check", "--offline"),
        USAGE,
        ("logn_url", "did you mean 'login_url'"),
        _set(sf, logn_url="https://login.salesforce.com"),
    ),
    Mistake(
        "status-without-state-database",
        ("status", "--config", "elsewhere/eventsync.toml"),
        USAGE,
        ("no state database", "elsewhere"),
        _in_other_dir,
    ),
    Mistake(
        "retry-without-state-database",
        ("retry",),
        USAGE,
        ("no state database", "eventsync run"),
    ),
    Mistake(
        "state-database-newer-than-eventsync",
        ("status",),
        USAGE,
        (f"schema version {LATEST_VERSION + 1}", "upgrade eventsync"),
        _newer_store,
    ),
    Mistake(
        "state-directory-unwritable",
        ("backfill", "export_registrations", "--mark-only"),
        USAGE,
        ("$.engine.state", "not-a-dir"),
        _state_under_a_file,
    ),
    Mistake(
        "state-database-unreachable",
        ("status",),
        UNAVAILABLE,
        ("cannot reach the state database", "127.0.0.1:1"),
        _engine(state="postgresql+psycopg://postgres@127.0.0.1:1/test"),
    ),
    Mistake(
        "state-database-without-eventsync-tables",
        ("status",),
        USAGE,
        ("holds no eventsync state",),
        _pg_without_tables,
    ),
    Mistake(
        "state-database-unsupported",
        ("status",),
        USAGE,
        ("unsupported database 'mysql'",),
        _engine(state="mysql://root@127.0.0.1/eventsync"),
    ),
    Mistake(
        "port-in-use",
        ("run", "--listen", "PORT_HELD"),
        USAGE,
        ("Address already in use", "--listen"),
    ),
    Mistake(
        "listen-not-host-port",
        ("run", "--listen", "localhost"),
        USAGE,
        ("--listen", "HOST:PORT"),
    ),
    Mistake(
        "listen-address-not-on-this-machine",
        ("run", "--listen", "192.0.2.1:8080"),
        USAGE,
        ("Cannot assign requested address", "--listen"),
    ),
    Mistake(
        "disk-full",
        ("init", "--force", "--path", "/dev/full"),
        PROBLEMS,
        ("No space left on device", "disk is full"),
    ),
    Mistake(
        "retry-unknown-id",
        ("retry", "--id", "999999"),
        USAGE,
        ("--id 999999: no such dead letter",),
    ),
    Mistake(
        "backfill-unknown-flow",
        ("backfill", "no_such_flow"),
        USAGE,
        ("no organisation has the flow 'no_such_flow'",),
    ),
    Mistake(
        "subscribe-unknown-org",
        ("subscribe", "--org", "nope"),
        USAGE,
        ("--org nope: no such organisation",),
    ),
]


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EVENTSYNC, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "COLUMNS": "200", "EVENTSYNC_DEBUG": ""},
    )


def make(mistake: Mistake, sandboxes: Sandboxes, tmp_path: Path) -> list[str]:
    """Write the case's files and return the command line."""
    case = Case(tmp_path, sandboxes)
    data = tomllib.loads(tomli_w.dumps(sandboxes.config))  # a deep copy
    data["engine"]["listen"] = f"127.0.0.1:{free_port()}"
    written = mistake.edit(data, case) if mistake.edit else None
    if written != "written":
        case.write(data)
    if mistake.id == "retry-unknown-id":
        # A real, empty store: the id is what is unknown.
        assert run_cli(tmp_path, "backfill", "export_registrations", "--mark-only").returncode == 0
    return [a.replace("PORT_HELD", f"127.0.0.1:{_held_port()}") for a in mistake.argv]


def test_the_catalogue_has_at_least_25_mistakes():
    ids = [m.id for m in CATALOGUE]
    assert len(ids) == len(set(ids)) >= 25, len(ids)


def test_the_catalogue_is_documented():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md").read_text()
    missing = [m.id for m in CATALOGUE if f"`{m.id}`" not in doc]
    assert not missing, f"not in docs/troubleshooting.md: {missing}"


@pytest.mark.parametrize("mistake", CATALOGUE, ids=lambda m: m.id)
def test_mistake(mistake: Mistake, sandboxes: Sandboxes, tmp_path: Path) -> None:
    argv = make(mistake, sandboxes, tmp_path)
    try:
        result = run_cli(tmp_path, *argv)
    finally:
        sandboxes.clear_faults()
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    assert result.returncode == mistake.code, out
    for words in mistake.says:
        assert words.lower() in " ".join(out.split()).lower(), f"{words!r} not in:\n{out}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if "--json" in argv:
        json.loads(result.stdout)  # still a JSON document, which carries the finding
        assert len(lines) <= mistake.max_lines, result.stderr
    else:
        assert 1 <= len(lines) <= mistake.max_lines, f"{len(lines)} lines:\n{result.stderr}"


def test_debug_shows_the_traceback(sandboxes: Sandboxes, tmp_path: Path) -> None:
    data = tomllib.loads(tomli_w.dumps(sandboxes.config))
    Case(tmp_path, sandboxes).write(data)
    port = f"127.0.0.1:{_held_port()}"
    short = run_cli(tmp_path, "run", "--listen", port)
    assert short.returncode == USAGE and "Traceback" not in short.stderr
    debug = run_cli(tmp_path, "--debug", "run", "--listen", port)
    assert "Traceback" in debug.stderr and "OSError" in debug.stderr
    assert debug.returncode != 0
