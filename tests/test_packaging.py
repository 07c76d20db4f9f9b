"""Packaging habits: one licence in one form everywhere, and version bounds between the
distributions of the workspace.

The distributions are the folders whose pyproject.toml has a ``[build-system]`` table: core, the
plugins, and the example plugin and example flow of docs/plugin-authors.md (the root
pyproject.toml only holds the shared tool configuration).
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement  # installed with pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = {
    "core": "eventsync",
    "plugins/salesforce": "eventsync-salesforce",
    "plugins/hopin": "eventsync-hopin",
    "plugins/hubspot": "eventsync-hubspot",
    "plugins/pardot_guard": "eventsync-pardot-guard",
    "docs/example-plugin": "eventsync-examplecrm",
    "docs/example-flow": "eventsync-ticket-campaigns",
}
#: Specifier operators that put a ceiling on the versions admitted.
UPPER_BOUNDS = frozenset({"<", "<=", "==", "~=", "==="})
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


def workspace_versions() -> dict[str, Version]:
    """The current version of every distribution of the workspace, by canonical name."""
    return {
        canonicalize_name(data["project"]["name"]): Version(data["project"]["version"])
        for data in pyprojects().values()
    }


def bound_problems(requirement: str, versions: dict[str, Version]) -> list[str]:
    """What is wrong with one requirement on a workspace distribution (nothing for others):
    it must have an upper bound, and it must admit that distribution's current version."""
    req = Requirement(requirement)
    current = versions.get(canonicalize_name(req.name))
    if current is None:
        return []
    problems = []
    if not any(spec.operator in UPPER_BOUNDS for spec in req.specifier):
        problems.append(
            f"{requirement!r} has no upper bound (e.g. <{current.major}.{current.minor + 1})"
        )
    if not req.specifier.contains(current, prereleases=True):
        problems.append(
            f"{requirement!r} does not admit {req.name} {current}, the workspace's version"
        )
    return problems


def requirements_of(project: dict[str, Any]) -> list[str]:
    """Every requirement of a ``[project]`` table, optional dependencies included."""
    found = list(project.get("dependencies", ()))
    for extra in project.get("optional-dependencies", {}).values():
        found.extend(extra)
    return found


def test_the_bound_check_catches_what_it_must():
    versions = {"eventsync": Version("0.1.0")}
    assert bound_problems("eventsync>=0.1,<0.2", versions) == []
    assert bound_problems("eventsync~=0.1.0", versions) == []
    assert bound_problems("requests>=2.31", versions) == []
    assert len(bound_problems("eventsync", versions)) == 1
    assert len(bound_problems("eventsync>=0.1", versions)) == 1
    (problem,) = bound_problems("eventsync>=0.2,<0.3", versions)
    assert "does not admit eventsync 0.1.0" in problem
    assert len(bound_problems("eventsync>0.1.0", versions)) == 2


def test_every_plugin_depends_on_a_bounded_eventsync_that_admits_core():
    versions = workspace_versions()
    assert versions["eventsync"] == Version("0.1.0")
    problems = []
    for folder, data in pyprojects().items():
        project = data["project"]
        if project["name"] == "eventsync":
            continue
        on_core = [r for r in project.get("dependencies", ()) if Requirement(r).name == "eventsync"]
        if not on_core:
            problems.append(f"{folder}: does not depend on eventsync")
        for requirement in requirements_of(project):
            problems.extend(f"{folder}: {p}" for p in bound_problems(requirement, versions))
    assert not problems, "\n".join(problems)
