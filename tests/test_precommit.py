""".pre-commit-config.yaml runs the checks of tests/test_lint.py, on the same paths, offline.

The hooks are ``repo: local`` hooks running the tools of the project's .venv, because this
machine (like many CI machines) cannot fetch hook repositories from the internet.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml  # installed with pre-commit (requirements-dev.txt)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".pre-commit-config.yaml"
VENV_PYTHON = ".venv/bin/python"
TOOLS = {"ruff-check": "ruff check", "ruff-format": "ruff format", "mypy": "mypy"}


def lint_paths() -> dict[str, list[str]]:
    """The paths each check of tests/test_lint.py runs on, read from its source."""
    tree = ast.parse((ROOT / "tests" / "test_lint.py").read_text(encoding="utf-8"))
    found: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.List):
            words = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            if words[:3] == ["-m", "ruff", "check"]:
                found["ruff-check"] = words[3:]
            elif words[:4] == ["-m", "ruff", "format", "--check"]:
                found["ruff-format"] = words[4:]
        elif (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["sources"]
            and isinstance(node.value, ast.List)
        ):
            found["mypy"] = [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
    assert set(found) == set(TOOLS), f"tests/test_lint.py changed shape; found {found}"
    return found


def hooks() -> dict[str, dict[str, Any]]:
    """The configured hooks by id."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    return {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}


def test_every_hook_is_local_and_runs_the_venv_tool():
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    found = hooks()
    assert set(found) == set(TOOLS)
    for hook_id, tool in TOOLS.items():
        hook = found[hook_id]
        assert hook["language"] == "system", hook_id
        assert hook["entry"] == f"{VENV_PYTHON} -m {tool}", hook_id
        assert hook["pass_filenames"] is False, f"{hook_id} must check the same paths every time"


def test_the_hooks_check_the_paths_of_test_lint():
    found = hooks()
    for hook_id, paths in lint_paths().items():
        assert found[hook_id]["args"] == paths, hook_id


def test_pre_commit_accepts_the_config():
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", str(CONFIG)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_ruff_check_hook_runs_offline(tmp_path):
    assert (ROOT / VENV_PYTHON).exists(), "the hooks run the .venv's tools: run `make install`"
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "ruff-check", "--all-files"],
        cwd=ROOT,
        env={**os.environ, "PRE_COMMIT_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ruff check" in result.stdout and "Passed" in result.stdout, result.stdout
