"""Shared fixtures of core's tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EVENTSYNC = Path(sys.executable).with_name("eventsync")


@pytest.fixture
def run_cli(tmp_path):
    """Run the real ``eventsync`` console script in ``tmp_path``; returns CompletedProcess."""

    def run(
        *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess:
        full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
        return subprocess.run(
            [str(EVENTSYNC), *args],
            cwd=cwd or tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run
