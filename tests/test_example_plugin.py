"""The example plugin of docs/plugin-authors.md installs, is discovered, and passes the kit
with every check applicable (nothing skipped)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from eventsync.testing import SYSTEM_CHECKS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "example-plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """Install the example into its own target directory; return an env that sees it."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return {**os.environ, "PYTHONPATH": str(target)}


def test_installed_plugin_is_discovered_through_its_entry_point(installed, tmp_path):
    result = subprocess.run(
        [str(Path(sys.executable).with_name("eventsync")), "plugins", "--json"],
        env=installed,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["examplecrm"]["distribution"] == "eventsync-examplecrm"
    assert {
        "system_profiles",
        "authenticate",
        "api_usage",
        "discover_schema",
        "pull",
        "push",
        "parse_notification",
        "start_sandbox",
    } <= set(rows["examplecrm"]["hooks"])


def test_example_plugin_passes_the_conformance_kit(installed):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            str(EXAMPLE / "tests"),
        ],
        env=installed,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(rf"{len(SYSTEM_CHECKS)} passed in [\d.]+s", summary), result.stdout
