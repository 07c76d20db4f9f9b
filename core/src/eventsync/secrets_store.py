"""The secrets store: the ``[engine] secrets_file`` (dotenv format) as something to write to.

The setup console saves what an admin types into a secret field here, and a plugin saves a
rotated credential (a new Salesforce refresh token) here, so the next start uses it. The config
file names each secret by ``<name>_env = "VARIABLE"``; this file holds ``VARIABLE="value"``.

python-dotenv reads the file (``dotenv_values``, without ``${VAR}`` expansion, as ``config.secrets_env`` does), but its writer (``set_key``) rewrites through a
temporary file outside the target's folder and takes no lock, so two writers (the console and a
worker rotating a token) could lose one another's update or leave a half-written file. Writes here
take an exclusive ``fcntl`` lock on a sidecar ``.lock`` file, rewrite the whole file into a
temporary file in the same folder, fsync it and ``os.replace`` it over the old one: a reader sees
the old file or the new one, never a mix, and no update is lost. The file is kept mode 0600.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path

from dotenv import dotenv_values

from .atomicfile import locked, replace

__all__ = ["SecretsStore", "valid_name"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ASSIGNMENT = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def valid_name(name: str) -> bool:
    """True when ``name`` can be an environment variable name (letters, digits, ``_``)."""
    return bool(_NAME.match(name))


def _quoted(value: str) -> str:
    # Single quotes: python-dotenv decodes only \\ and \',
    # so any value (a password with a "$", a PEM key over several lines) reads back as written.
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


class SecretsStore:
    """Read and atomically update one dotenv secrets file (created on the first write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def values(self) -> dict[str, str]:
        """Every variable in the file (empty when the file does not exist yet)."""
        if not self.path.is_file():
            return {}
        return {
            k: v for k, v in dotenv_values(self.path, interpolate=False).items() if v is not None
        }

    def names(self) -> set[str]:
        """The names of the variables set in the file (never their values)."""
        return set(self.values())

    def get(self, name: str) -> str | None:
        """The value of ``name``, or None when the file does not set it."""
        return self.values().get(name)

    def set(self, name: str, value: str) -> None:
        """Set one variable (see ``update``)."""
        self.update({name: value})

    def update(self, values: Mapping[str, str]) -> None:
        """Set several variables in one atomic rewrite, keeping every other line (comments
        included) as it was; a variable already present is replaced where it stands.

        :raises ValueError: a name is not a valid variable name.
        """
        for name in values:
            if not valid_name(name):
                raise ValueError(
                    f"{name!r} is not a valid secret variable name (use letters, digits and _)"
                )
        with self._locked():
            lines = self._lines()
            pending = dict(values)
            out: list[str] = []
            for line in lines:
                match = _ASSIGNMENT.match(line)
                assigned: str | None = match.group(1) if match else None
                if assigned is not None and assigned in pending:
                    out.append(f"{assigned}={_quoted(pending.pop(assigned))}\n")
                elif assigned is not None and assigned in values:
                    continue  # a second assignment of a name just written: drop it
                else:
                    out.append(line if line.endswith("\n") else line + "\n")
            out.extend(f"{name}={_quoted(value)}\n" for name, value in pending.items())
            self._replace("".join(out))

    def _lines(self) -> list[str]:
        if not self.path.is_file():
            return []
        return self.path.read_text(encoding="utf-8").splitlines(keepends=True)

    def _locked(self) -> AbstractContextManager[None]:
        return locked(self.path)

    def _replace(self, text: str) -> None:
        replace(self.path, text, 0o600)
