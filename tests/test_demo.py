"""`eventsync demo` (what `make demo` runs) performs every step of the guide's procedure."""

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_every_step_and_exits_0(tmp_path):
    result = subprocess.run(
        [str(Path(sys.executable).with_name("eventsync")), "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for number in range(1, 9):
        assert f"{number}. ok" in result.stdout
    assert "all 8 steps happened" in result.stdout
    assert " ms)" in result.stdout  # each step reports its latency
