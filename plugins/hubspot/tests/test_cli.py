"""``eventsync sandbox --crm hubspot``, ``eventsync init --sandbox`` and ``eventsync check``
as a user runs them, in their own processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

EVENTSYNC = str(Path(sys.executable).with_name("eventsync"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [EVENTSYNC, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )


def test_a_hubspot_sandbox_is_configured_and_checked_from_the_command_line(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [EVENTSYNC, "sandbox", "--crm", "hubspot", "--endpoint", f"http://127.0.0.1:{port}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line, proc.stderr.read() if proc.stderr else ""
        info = json.loads(line)
        assert (info["crm"], info["event_platform"]) == ("hubspot", "hopin")
        token = info["hubspot"]["access_token"]

        result = run(tmp_path, "init", "--sandbox")
        assert result.returncode == 0, result.stderr
        text = (tmp_path / "eventsync.toml").read_text()
        assert token not in text  # named by its variable; the value is in the secrets file
        org = tomllib.loads(text)["orgs"]["sandbox"]
        hubspot = org["systems"]["hubspot"]
        assert hubspot["webhook_url"] == f"http://127.0.0.1:{port}/hooks/sandbox/hubspot"
        assert org["flows"]["import_registrations"]["source_filter"] == [
            {"field": "hopin_ticket_code", "op": "not_empty"}
        ]

        check = run(tmp_path, "check")
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
