"""What the Salesforce web server flow produced, written to a config and its secrets file,
lets ``eventsync check`` connect; a rotated refresh token is saved into the secrets file by
the check and used by the next one."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import requests
import tomli_w
from eventsync.config import load_config
from eventsync.engine import Engine
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import sandbox_config_files
from eventsync.secrets_store import SecretsStore
from eventsync_salesforce import plugin
from eventsync_salesforce.sandbox.formclient import WebSignIn

EVENTSYNC = str(Path(sys.executable).with_name("eventsync"))
CALLBACK = "http://127.0.0.1:8765/console/oauth/callback"


def _check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EVENTSYNC, "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_signed_in_config_passes_check_and_rotation_is_saved(acme_pair: Any, tmp_path):
    sandbox = acme_pair.handles()["salesforce"]
    app = requests.post(
        f"{sandbox.url}/_admin/oauth/apps",
        json={"name": "Check test", "callback_urls": [CALLBACK], "rotate_refresh_tokens": True},
        headers={"X-Admin-Token": sandbox.admin_token},
        verify=sandbox.ca_bundle,
        timeout=30,
    ).json()
    table = {
        "login_url": sandbox.url,
        "client_id": app["client_id"],
        "ca_bundle": sandbox.ca_bundle,
    }
    start = plugin.oauth_start("salesforce", table, CALLBACK, "st")
    sent = WebSignIn(sandbox).callback(start.url)
    grant = plugin.oauth_finish(
        "salesforce",
        table,
        CALLBACK,
        sent["code"],
        start.verifier,
        {"client_secret": app["client_secret"]},
    )

    text, secrets = sandbox_config_files(
        acme_pair.info(), hooks=Hooks(make_plugin_manager(environ={})), secrets_file="secrets.env"
    )
    data = tomllib.loads(text)
    kept = data["orgs"]["acme"]["systems"]["salesforce"]
    data["orgs"]["acme"]["systems"]["salesforce"] = {
        **grant.settings,
        "ca_bundle": kept["ca_bundle"],
        "api_version": kept["api_version"],
        "refresh_token_env": "SF_OAUTH_REFRESH_TOKEN",
        "client_secret_env": "SF_OAUTH_CLIENT_SECRET",
        **{k: v for k, v in kept.items() if k.startswith(("org_id", "outbound_token"))},
    }
    config = tmp_path / "eventsync.toml"
    config.write_text(tomli_w.dumps(data), encoding="utf-8")
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text(secrets, encoding="utf-8")
    store = SecretsStore(secrets_file)
    store.update(
        {
            "SF_OAUTH_REFRESH_TOKEN": grant.secrets["refresh_token"],
            "SF_OAUTH_CLIENT_SECRET": grant.secrets["client_secret"],
        }
    )

    first = _check(config)
    assert first.returncode == 0, first.stdout + first.stderr
    rotated = store.get("SF_OAUTH_REFRESH_TOKEN")
    assert rotated and rotated != grant.secrets["refresh_token"]
    second = _check(config)
    assert second.returncode == 0, second.stdout + second.stderr
    latest = store.get("SF_OAUTH_REFRESH_TOKEN")
    assert latest not in (rotated, grant.secrets["refresh_token"])

    # The engine connects with the saved token and saves the next rotation too.
    engine = Engine(load_config(str(config)), pollers=False, subscribe=False)
    try:
        conn = engine.system_connection("acme", "salesforce")
        assert conn.sf.query("SELECT COUNT() FROM User")["totalSize"] >= 2
    finally:
        engine.close()
    assert store.get("SF_OAUTH_REFRESH_TOKEN") not in (latest, rotated)
