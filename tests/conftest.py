"""Shared by the workspace tests: the example plugin of docs/example-plugin, imported from its
source tree, and the conformance kit's mutation score in the terminal summary."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "example-plugin"
PACKAGE = "eventsync_examplecrm"
#: Directories whose every test is end-to-end (real processes, sandboxes, a browser): marked
#: ``slow``, so `make test` leaves them to `make test-all` (what CI runs).
SLOW_DIRS = (ROOT / "tests" / "e2e", ROOT / "tests" / "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of ``SLOW_DIRS`` slow."""
    for item in items:
        if any(item.path.is_relative_to(folder) for folder in SLOW_DIRS):
            item.add_marker(pytest.mark.slow)


def load_example_module(name: str, path: Path, package: bool = False) -> ModuleType:
    """Import ``path`` as module ``name`` (once). sys.path is left alone, so the example's
    entry point (an egg-info left by a build) is never discovered by other tests."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(path.parent)] if package else None
    )
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def example_plugin() -> ModuleType:
    """The example CRM plugin's hook module (``eventsync_examplecrm.plugin``)."""
    load_example_module(PACKAGE, EXAMPLE / "src" / PACKAGE / "__init__.py", package=True)
    return importlib.import_module(f"{PACKAGE}.plugin")


@pytest.fixture(scope="session")
def example_kit(example_plugin: ModuleType) -> Any:
    """The example's own conformance-kit definition (docs/example-plugin/tests), with the
    plugin object registered directly instead of through its entry point."""
    import attrs

    module = load_example_module(
        "examplecrm_conformance", EXAMPLE / "tests" / "test_conformance.py"
    )
    return attrs.evolve(module.KIT, plugin=example_plugin)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the mutation score the conformance-kit tests recorded (``kit_variant``)."""
    rows = []
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            props = dict(getattr(report, "user_properties", ()))
            if getattr(report, "when", "") == "call" and "kit_variant" in props:
                rows.append(props)
    if not rows:
        return
    killed = [r for r in rows if r["killed"]]
    terminalreporter.write_sep("-", "conformance kit mutation score")
    terminalreporter.write_line(
        f"{len(killed)}/{len(rows)} broken variants of the example plugin killed"
    )
    for row in sorted(rows, key=lambda r: r["kit_variant"]):
        status = "killed" if row["killed"] else "SURVIVED"
        terminalreporter.write_line(f"  {status:8} {row['kit_variant']}: {row['failed_checks']}")


@pytest.fixture(scope="module")
def acme_pair() -> Any:
    """A Salesforce and a Hopin sandbox (3 registrations) for the organisation ``acme``,
    sending no notifications: the CLI tests write their own config files for them."""
    from eventsync.plugins import Hooks, make_plugin_manager
    from eventsync.sandbox_env import free_port, start_sandboxes

    pair = start_sandboxes(
        Hooks(make_plugin_manager(environ={})),
        crm="salesforce",
        platform="hopin",
        org="acme",
        endpoint=f"http://127.0.0.1:{free_port()}",
        triggers=False,
        registrations=3,
    )
    yield pair
    pair.stop()
