"""The sandboxes are an extra: a production install of a plugin works without their dependencies.

Each check runs in a fresh interpreter whose ``sys.meta_path`` starts with a finder that refuses
the sandbox-only modules, as if ``pip install eventsync-salesforce`` had been run without
``[sandbox]``. Every module of every plugin outside its ``sandbox`` package must still import, and
so must every entry-point module (the plugin manager loads those in any install, including the
``*_sandbox`` hooks that live in the sandbox packages); ``start_sandbox`` must say which extra to
install instead of showing an ImportError traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement  # installed with pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"

#: Runs in the child: argv = blocked modules, modules to import, systems whose sandbox to start.
CHILD = r"""
import importlib
import importlib.abc
import json
import sys

blocked = set(sys.argv[1].split(","))
already = sorted(blocked & {name.partition(".")[0] for name in sys.modules})
assert not already, f"imported before the blocker was installed: {already}"


class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Block())

report = {"blocker_works": [], "imported": [], "sandboxes": {}}
for name in sorted(blocked):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        report["blocker_works"].append(name)
for name in sys.argv[2].split(","):
    importlib.import_module(name)
    report["imported"].append(name)
report["loaded_blocked"] = sorted(blocked & {n.partition(".")[0] for n in sys.modules})

from eventsync.errors import EventsyncError
from eventsync.plugins import Hooks, make_plugin_manager

hooks = Hooks(make_plugin_manager())
for system in filter(None, sys.argv[3].split(",")):
    try:
        handle = hooks.start_sandbox(system, {})
    except Exception as exc:
        report["sandboxes"][system] = {
            "type": type(exc).__name__,
            "eventsync_error": isinstance(exc, EventsyncError),
            "message": str(exc),
            "chained": exc.__cause__ is not None
            or (exc.__context__ is not None and not exc.__suppress_context__),
        }
    else:
        handle.stop()
        report["sandboxes"][system] = {"type": None, "message": "started"}
print(json.dumps(report))
"""

#: The blocker alone, prepended to a command-line run of ``eventsync``.
CLI = r"""
import importlib.abc
import sys

blocked = set(sys.argv.pop(1).split(","))


class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Block())
from eventsync.cli import main

sys.argv[0] = "eventsync"
main()
"""


def entry_point_modules(folder: str) -> list[str]:
    """The modules a plugin's entry points name (loaded by every plugin manager)."""
    data = tomllib.loads((PLUGINS / folder / "pyproject.toml").read_text(encoding="utf-8"))
    return sorted(data["project"]["entry-points"]["eventsync"].values())


def production_modules() -> dict[str, list[str]]:
    """Every module of every plugin that a production install imports, by distribution folder:
    all but the sandbox packages, plus every entry-point module."""
    found: dict[str, list[str]] = {}
    for src in sorted(PLUGINS.glob("*/src")):
        names = []
        for path in sorted(src.rglob("*.py")):
            parts = path.relative_to(src).with_suffix("").parts
            if "sandbox" in parts:
                continue
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        extra = [m for m in entry_point_modules(src.parent.name) if m not in names]
        found[src.parent.name] = names + extra
    return found


def run_child(blocked: set[str], modules: list[str], systems: list[str]) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            ",".join(sorted(blocked)),
            ",".join(modules),
            ",".join(systems),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def sandbox_extra(folder: str) -> set[str]:
    """Names of the distributions in one plugin's ``[sandbox]`` extra."""
    data = tomllib.loads((PLUGINS / folder / "pyproject.toml").read_text(encoding="utf-8"))
    return {
        Requirement(r).name.lower() for r in data["project"]["optional-dependencies"]["sandbox"]
    }


def test_the_module_lists_cover_every_plugin_and_leave_out_the_sandbox_servers():
    modules = production_modules()
    assert set(modules) == {"salesforce", "hopin", "hubspot", "pardot_guard"}
    for folder, names in modules.items():
        assert f"eventsync_{folder}.plugin" in names
        assert set(entry_point_modules(folder)) <= set(names)
        inside = [n for n in names if "sandbox" in n.split(".")]
        assert inside == [n for n in entry_point_modules(folder) if "sandbox" in n.split(".")]
    assert "eventsync_salesforce.sandbox.hooks" in modules["salesforce"]
    assert "eventsync_hopin.sandbox.hooks" in modules["hopin"]
    assert "eventsync_hubspot.sandbox.hooks" in modules["hubspot"]
    assert "eventsync_hubspot.sandbox.server" not in modules["hubspot"]
    assert "eventsync_salesforce.sandbox.server" not in modules["salesforce"]
    assert (PLUGINS / "salesforce/src/eventsync_salesforce/sandbox/server.py").is_file()
    assert (PLUGINS / "hopin/src/eventsync_hopin/sandbox/server.py").is_file()


def test_the_sandbox_dependencies_are_an_extra_not_a_requirement():
    extras = {
        "salesforce": {"trustme", "lark", "flask"},
        "hopin": {"flask"},
        "hubspot": {"werkzeug"},
    }
    for folder, extra in extras.items():
        data = tomllib.loads((PLUGINS / folder / "pyproject.toml").read_text(encoding="utf-8"))
        required = {Requirement(r).name.lower() for r in data["project"]["dependencies"]}
        assert extra <= sandbox_extra(folder), folder
        assert not extra & required, f"{folder}: still production dependencies: {extra & required}"


def test_without_trustme_and_lark_every_production_module_imports_and_the_sandbox_says_why():
    modules = [name for names in production_modules().values() for name in names]
    report = run_child({"trustme", "lark"}, modules, ["salesforce"])
    assert report["blocker_works"] == ["lark", "trustme"]
    assert report["imported"] == modules
    assert report["loaded_blocked"] == []
    salesforce = report["sandboxes"]["salesforce"]
    assert salesforce["type"] == "SandboxNotInstalled", salesforce
    assert salesforce["eventsync_error"]
    assert "pip install 'eventsync-salesforce[sandbox]'" in salesforce["message"]
    assert not salesforce["chained"], "the ImportError must not be chained into the traceback"


def test_without_flask_and_werkzeug_the_plugins_import_and_the_hopin_sandbox_says_why():
    """Core needs flask for its own server, but no plugin module a production install loads may
    need it (the ``hopin_sandbox`` hooks included)."""
    modules = [name for names in production_modules().values() for name in names]
    report = run_child({"flask", "werkzeug"}, modules, ["hopin", "hubspot", "salesforce"])
    assert report["imported"] == modules
    assert report["loaded_blocked"] == []
    for system in ("hopin", "hubspot", "salesforce"):
        answer = report["sandboxes"][system]
        assert answer["type"] == "SandboxNotInstalled", answer
        assert f"pip install 'eventsync-{system}[sandbox]'" in answer["message"]
        assert not answer["chained"]


def test_eventsync_sandbox_without_the_extra_prints_the_fix_and_no_traceback(tmp_path):
    info = tmp_path / "sandbox.json"
    result = subprocess.run(
        [sys.executable, "-c", CLI, "trustme,lark", "sandbox", "--info-file", str(info)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "pip install 'eventsync-salesforce[sandbox]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not info.exists()
