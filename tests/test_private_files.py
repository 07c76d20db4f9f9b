"""Every file a sandbox writes that holds credentials or people's data is its owner's alone.

(`eventsync sandbox`'s info file and `eventsync init --sandbox`'s secrets file are checked by
tests/test_sandbox_cli.py; `write_private` itself by core/tests/test_sandbox_env.py.)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import requests
from eventsync.plugins import Hooks, make_plugin_manager


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_salesforce_sandbox_state_file_and_generated_key(tmp_path) -> None:
    hooks = Hooks(make_plugin_manager(environ={}))
    state = tmp_path / "salesforce-state.json"
    handle = hooks.start_sandbox("salesforce", {"state_file": str(state)})
    try:
        assert mode(handle.info()["private_key_file"]) == 0o600
    finally:
        handle.stop()
    assert mode(state) == 0o600
    # A file left readable by an older version is narrowed when written again.
    state.chmod(0o644)
    again = hooks.start_sandbox("salesforce", {"state_file": str(state)})
    again.stop()
    assert mode(state) == 0o600


def test_the_hopin_sandbox_state_file(tmp_path) -> None:
    hooks = Hooks(make_plugin_manager(environ={}))
    state = tmp_path / "hopin-state.json"
    handle = hooks.start_sandbox("hopin", {"state_file": str(state)})
    try:
        info = handle.info()
        requests.post(
            f"{info['admin_url']}/events/{info['event_id']}/registrations",
            json={"ticketId": info["ticket_id"], "email": "private@example.com"},
            timeout=10,
        ).raise_for_status()
        assert "private@example.com" in state.read_text()
        assert mode(state) == 0o600
    finally:
        handle.stop()
