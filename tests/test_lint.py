"""The whole workspace passes ruff with the shared configuration of the root pyproject.toml."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "core",
            "plugins",
            "tests",
            "bench",
            "docs/examples",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_changes_nothing():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "format",
            "--check",
            "core",
            "plugins",
            "tests",
            "bench",
            "docs",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, "run `ruff format` on:\n" + result.stdout + result.stderr


def test_mypy_finds_nothing_in_the_distributions():
    sources = [
        "core/src/eventsync",
        "plugins/salesforce/src",
        "plugins/hopin/src",
        "plugins/hubspot/src",
        "plugins/pardot_guard/src",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", *sources],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
