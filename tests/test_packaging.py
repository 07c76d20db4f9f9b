"""Every distribution of the workspace declares the same licence, in the same form.

The distributions are the folders whose pyproject.toml has a ``[build-system]`` table: core, the
plugins and the example plugin of docs/plugin-authors.md (the root pyproject.toml only holds the
shared tool configuration).
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement  # installed with pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = {
    "core": "eventsync",
    "plugins/salesforce": "eventsync-salesforce",
    "plugins/hopin": "eventsync-hopin",
    "plugins/pardot_guard": "eventsync-pardot-guard",
    "docs/example-plugin": "eventsync-examplecrm",
}
#: The first setuptools that reads ``project.license-files`` and SPDX ``project.license`` (PEP 639).
LICENSE_FILES_SETUPTOOLS = Version("77")


def pyprojects() -> dict[str, dict[str, Any]]:
    """Every tracked pyproject.toml that builds a distribution, by folder."""
    listed = subprocess.run(
        ["git", "ls-files", "*pyproject.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found = {}
    for name in listed:
        data = tomllib.loads((ROOT / name).read_text(encoding="utf-8"))
        if "build-system" in data:
            found[str(Path(name).parent)] = data
    return found


def test_the_distributions_are_the_ones_expected():
    found = {folder: data["project"]["name"] for folder, data in pyprojects().items()}
    assert found == DISTRIBUTIONS


def test_the_root_license_is_the_apache_license_2_0_in_full():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "9. Accepting Warranty or Additional Liability." in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_every_distribution_declares_apache_2_0_with_its_license_file():
    root_license = (ROOT / "LICENSE").read_bytes()
    for folder, data in pyprojects().items():
        project = data["project"]
        assert project.get("license") == "Apache-2.0", f"{folder}: license must be the SPDX id"
        assert project.get("license-files") == ["LICENSE"], folder
        # PEP 639 forbids ".." in license-files, so each distribution carries a copy.
        copy = ROOT / folder / "LICENSE"
        assert copy.is_file(), f"{folder}/LICENSE is missing"
        assert copy.read_bytes() == root_license, f"{folder}/LICENSE differs from LICENSE"


def test_every_distribution_builds_with_a_setuptools_that_reads_license_files():
    for folder, data in pyprojects().items():
        requires = [Requirement(r) for r in data["build-system"]["requires"]]
        setuptools = [r for r in requires if r.name == "setuptools"]
        assert setuptools, f"{folder}: build-system.requires names no setuptools"
        for req in setuptools:
            older = Version(f"{LICENSE_FILES_SETUPTOOLS.major - 1}.99")
            assert not req.specifier.contains(older, prereleases=True), (
                f"{folder}: {req} admits a setuptools without license-files support"
            )


def test_the_development_environment_has_such_a_setuptools():
    """tests/test_example_plugin.py builds without isolation, with the venv's own setuptools."""
    lines = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
    requires = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    (setuptools,) = [r for r in requires if r.name == "setuptools"]
    assert not setuptools.specifier.contains(f"{LICENSE_FILES_SETUPTOOLS.major - 1}.99")
