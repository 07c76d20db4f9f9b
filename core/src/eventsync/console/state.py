"""What every console page works with: the config file, the secrets store, the plugins, an
engine for the state store, and each organisation's discovered schemas."""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from flask import current_app

from ..config import Config
from ..models import Schema, SystemSettings
from ..plugins import Hooks, make_plugin_manager
from ..secrets_store import SecretsStore
from .accounts import DEFAULT_SECRETS_FILE, secrets_store_for
from .document import ConfigDocument

__all__ = ["ConsoleState", "state", "secret_variable"]

#: Seconds a discovered schema is reused before it is described again.
SCHEMA_TTL = 60.0
#: Seconds an OAuth sign-in may take between Connect and the callback.
SIGN_IN_TTL = 600.0


def secret_variable(org: str, owner: str, setting: str) -> str:
    """The secrets-store variable a secret setting typed into the console is saved under, e.g.
    ``ACME_CRM_CLIENT_SECRET`` for ``client_secret_env`` of system ``crm`` in org ``acme``."""
    name = setting.removesuffix("_env")
    return re.sub(r"[^A-Za-z0-9]+", "_", f"{org}_{owner}_{name}").upper()


class ConsoleState:
    """The console's view of one configuration file (and of a running engine, when mounted)."""

    def __init__(self, config_path: str | Path, engine: Any = None) -> None:
        self.config_path = Path(config_path)
        self.running_engine = engine
        self._hooks: Hooks | None = None
        self._schemas: dict[tuple[str, str, tuple[str, ...]], tuple[float, Schema]] = {}
        self._verifiers: dict[str, tuple[float, str]] = {}
        self._verifiers_lock = threading.Lock()

    def keep_verifier(self, sign_in_state: str, verifier: str) -> None:
        """Hold a sign-in's PKCE verifier in this process, under its ``state``, until the
        callback (at most ``SIGN_IN_TTL`` seconds): it never reaches the browser, not even in
        the session cookie (which is signed, not encrypted)."""
        now = time.monotonic()
        with self._verifiers_lock:
            for key in [k for k, (at, _) in self._verifiers.items() if now - at > SIGN_IN_TTL]:
                del self._verifiers[key]
            self._verifiers[sign_in_state] = (now, verifier)

    def take_verifier(self, sign_in_state: str) -> str | None:
        """The verifier kept for ``sign_in_state``, once; None when unknown or expired."""
        with self._verifiers_lock:
            kept = self._verifiers.pop(sign_in_state, None)
        if kept is None or time.monotonic() - kept[0] > SIGN_IN_TTL:
            return None
        return kept[1]

    def document(self) -> ConfigDocument:
        """A fresh read of the config file."""
        return ConfigDocument.read(self.config_path)

    def secrets(self, doc: ConfigDocument | None = None) -> SecretsStore:
        """The secrets store; a config without ``secrets_file`` is given the default one in
        ``doc`` (saved with it), so a secret never lands in the config file."""
        store = secrets_store_for(self.config_path)
        if store is not None:
            return store
        if doc is not None and not doc.get("engine", "secrets_file"):
            doc.update(("engine",), {"secrets_file": DEFAULT_SECRETS_FILE})
        return SecretsStore(self.config_path.resolve().parent / DEFAULT_SECRETS_FILE)

    def hooks(self) -> Hooks:
        """The installed plugins (less the config's block list when it can be read)."""
        if self._hooks is None:
            engine = self.document().get("engine") or {}
            self._hooks = Hooks(
                make_plugin_manager(
                    allow=engine.get("plugins_allow"), block=engine.get("plugins_block") or ()
                )
            )
        return self._hooks

    def env(self) -> dict[str, str]:
        """Where secrets are read from: the process environment overlaid with the store."""
        store = secrets_store_for(self.config_path)
        return {**os.environ, **(store.values() if store else {})}

    def system_settings(self, config: Config, org: str, system: str) -> SystemSettings:
        """The connection settings of ``system`` of ``org``, secrets read from the store."""
        return config.org(org).settings(system, self.env())

    def schema(self, config: Config, org: str, system: str, objects: tuple[str, ...]) -> Schema:
        """The discovered schema of ``objects`` (all of them when empty), cached a minute.

        :raises EventsyncError: the system could not be reached or refused the credentials.
        """
        key = (org, system, objects)
        cached = self._schemas.get(key)
        if cached and time.monotonic() - cached[0] < SCHEMA_TTL:
            return cached[1]
        hooks = self.hooks().for_plugins(config.org(org).plugins)
        connection = hooks.authenticate(self.system_settings(config, org, system))
        schema = hooks.discover_schema(connection, list(objects) or None)
        self._schemas[key] = (time.monotonic(), schema)
        return schema

    def forget_schemas(self, org: str) -> None:
        """Drop the cached schemas of ``org`` (its connection settings changed)."""
        for key in [k for k in self._schemas if k[0] == org]:
            del self._schemas[key]

    @contextlib.contextmanager
    def engine(self, config: Config) -> Iterator[Any]:
        """The running engine when the console is mounted by ``eventsync run``, else one made
        for the request over the same state store (no pollers, no subscriptions), closed after."""
        if self.running_engine is not None:
            yield self.running_engine
            return
        from ..engine import Engine

        engine = Engine(config, hooks=self.hooks(), pollers=False, subscribe=False)
        try:
            yield engine
        finally:
            engine.close()

    def entitled(self, config: Config, org: str) -> Mapping[str, bool]:
        """Per registered flow: may the organisation's plan use it."""
        allowed = config.entitled(config.org(org).plan)
        return {name: allowed is None or name in allowed for name in self.hooks().flows()}


def state() -> ConsoleState:
    """The console state of the current app."""
    return current_app.extensions["eventsync_console"]
