"""The console's admin account and its own secrets, kept in the secrets store.

The console holds credentials, so it is never open: one admin account, whose password hash
(werkzeug's salted scrypt/pbkdf2) is written by ``eventsync console --create-admin``. The
Flask session-signing key is made at the same time. Both live in the ``[engine] secrets_file``
(``eventsync.secrets_store``), never in the config file; a config without ``secrets_file``
gets ``secrets_file = "eventsync.secrets"`` (beside it) when the admin is created.
"""

from __future__ import annotations

import secrets
import tomllib
from pathlib import Path

import attrs
from werkzeug.security import check_password_hash, generate_password_hash

from ..secrets_store import SecretsStore
from .document import ConfigDocument

__all__ = [
    "ADMIN_USER",
    "ADMIN_HASH",
    "SECRET_KEY",
    "DEFAULT_SECRETS_FILE",
    "Account",
    "secrets_store_for",
    "create_admin",
    "account",
]

ADMIN_USER = "EVENTSYNC_CONSOLE_ADMIN"
ADMIN_HASH = "EVENTSYNC_CONSOLE_PASSWORD_HASH"
SECRET_KEY = "EVENTSYNC_CONSOLE_SECRET_KEY"
DEFAULT_SECRETS_FILE = "eventsync.secrets"
#: Shortest password ``--create-admin`` accepts.
MIN_PASSWORD = 12


@attrs.frozen
class Account:
    """The admin account as the console checks sign-ins against it."""

    username: str
    password_hash: str = attrs.field(repr=False)
    secret_key: str = attrs.field(repr=False)

    def verify(self, username: str, password: str) -> bool:
        """True when ``username`` and ``password`` are the admin's."""
        # The hash is checked even for a wrong name, so timing does not tell names apart.
        ok = check_password_hash(self.password_hash, password)
        return ok and secrets.compare_digest(username, self.username)


def _secrets_file(config_path: Path) -> str | None:
    if not config_path.is_file():
        return None
    try:
        data = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError:
        return None
    value = data.get("engine", {}).get("secrets_file")
    return value if isinstance(value, str) and value else None


def secrets_store_for(config_path: str | Path) -> SecretsStore | None:
    """The secrets store the config file names (relative to the file), or None without one."""
    path = Path(config_path)
    name = _secrets_file(path)
    if name is None:
        return None
    secrets_path = Path(name).expanduser()
    if not secrets_path.is_absolute():
        secrets_path = path.resolve().parent / secrets_path
    return SecretsStore(secrets_path)


def password_problem(password: str) -> str | None:
    """Why ``password`` is refused for the admin, or None."""
    if len(password) < MIN_PASSWORD:
        return f"the password must have at least {MIN_PASSWORD} characters"
    return None


def create_admin(config_path: str | Path, username: str, password: str) -> SecretsStore:
    """Create (or replace) the admin account and the session key; returns the store used.

    :raises ValueError: the username is empty or the password too short.
    """
    if not username.strip():
        raise ValueError("the admin username may not be empty")
    if problem := password_problem(password):
        raise ValueError(problem)
    store = secrets_store_for(config_path)
    if store is None:
        doc = ConfigDocument.read(config_path)
        doc.update(("engine",), {"secrets_file": DEFAULT_SECRETS_FILE})
        doc.save()
        store = secrets_store_for(config_path)
        assert store is not None
    store.update(
        {
            ADMIN_USER: username.strip(),
            ADMIN_HASH: generate_password_hash(password),
            SECRET_KEY: secrets.token_hex(32),
        }
    )
    return store


def account(config_path: str | Path) -> Account | None:
    """The admin account, or None while ``--create-admin`` has not made one."""
    store = secrets_store_for(config_path)
    if store is None:
        return None
    values = store.values()
    if not all(values.get(k) for k in (ADMIN_USER, ADMIN_HASH, SECRET_KEY)):
        return None
    return Account(values[ADMIN_USER], values[ADMIN_HASH], values[SECRET_KEY])
