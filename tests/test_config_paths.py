"""Relative paths in the config file (state, secrets file, key and CA files) are read against
the file's own directory, whatever the working directory; through the real commands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import sandbox_config_files

EVENTSYNC = str(Path(sys.executable).with_name("eventsync"))


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EVENTSYNC, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_relative_paths_are_read_against_the_config_files_directory(acme_pair: Any, tmp_path):
    conf, elsewhere = tmp_path / "etc" / "eventsync", tmp_path / "work"
    (conf / "keys").mkdir(parents=True)
    elsewhere.mkdir()
    text, secrets = sandbox_config_files(
        acme_pair.info(), hooks=Hooks(make_plugin_manager(environ={})), secrets_file="secrets.env"
    )
    data = tomllib.loads(text)
    sf = data["orgs"]["acme"]["systems"]["salesforce"]
    shutil.copy(sf["private_key_file"], conf / "keys" / "jwt.pem")
    shutil.copy(sf["ca_bundle"], conf / "ca.pem")
    sf.update(private_key_file="keys/jwt.pem", ca_bundle="ca.pem")
    data["engine"]["state"] = "state/eventsync.sqlite"
    (conf / "eventsync.toml").write_text(tomli_w.dumps(data))
    (conf / "secrets.env").write_text(secrets)
    config = str(conf / "eventsync.toml")

    # Before anything made the store, status refuses rather than creating an empty one.
    missing = run(elsewhere, "status", "--config", config)
    assert missing.returncode == 2 and "no state database" in missing.stderr
    assert not (conf / "state").exists()

    checked = run(elsewhere, "check", "--config", config)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    marked = run(elsewhere, "backfill", "export_registrations", "--mark-only", "--json",
                 "--config", config)  # fmt: skip
    assert marked.returncode == 0, marked.stdout + marked.stderr
    queued = json.loads(marked.stdout)["orgs"]["acme"]["marked"]
    assert queued >= 1
    assert (conf / "state" / "eventsync.sqlite").is_file()
    assert list(elsewhere.iterdir()) == [], "nothing is written to the working directory"

    # From a third directory, with a relative --config: the same store, the same work.
    status = run(tmp_path, "status", "--json", "--config", "etc/eventsync/eventsync.toml")
    assert status.returncode == 0, status.stderr
    flows = {f["flow"]: f for f in json.loads(status.stdout)["flows"]}
    assert flows["export_registrations"]["pending"] == queued
