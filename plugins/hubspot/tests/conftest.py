"""Fixtures of the hubspot plugin's tests: a sandbox and a connection to it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from eventsync.plugins import Hooks, make_plugin_manager

pytest_plugins = ["eventsync.testing"]


@pytest.fixture
def hooks() -> Hooks:
    """The installed plugins (this one among them)."""
    return Hooks(make_plugin_manager(environ={}))


@pytest.fixture
def start(hooks: Hooks) -> Iterator[Any]:
    """Start sandboxes with options; every one is stopped at teardown."""
    started: list[Any] = []

    def make(**options: Any) -> Any:
        handle = hooks.start_sandbox("hubspot", options)
        started.append(handle)
        return handle

    yield make
    for handle in started:
        handle.stop()


@pytest.fixture
def sandbox(start: Any) -> Any:
    """A sandbox with the integration's contact properties, answers in a fixed order."""
    from eventsync_hubspot.sandbox.wiring import sandbox_options

    return start(**sandbox_options(None), seed=7)


@pytest.fixture
def conn(hooks: Hooks, sandbox: Any) -> Any:
    """A connection to ``sandbox``."""
    return hooks.authenticate(sandbox.settings("acme"))


def call_admin(sandbox: Any, method: str, path: str, body: Any = None) -> Any:
    """Call the sandbox's admin API."""
    response = requests.request(method, f"{sandbox.admin_url}{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


@pytest.fixture
def admin() -> Any:
    """``admin(sandbox, method, path, body)``: call a sandbox's admin API."""
    return call_admin
