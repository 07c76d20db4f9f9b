"""The configuration file as the console edits it: round-trip TOML, validated, never clobbered.

tomlkit keeps the file's comments, order and layout through an edit (``tomllib``/``tomli-w``
would drop them). Every page that edits the file carries the fingerprint (SHA-256) of the text
it was rendered from; a save whose fingerprint no longer matches the file is refused, so an
edit made meanwhile (in an editor, by another admin) is never overwritten. The edited document
is validated by ``eventsync.config.parse_config``, the reader ``eventsync check`` uses, so the
console shows the same messages; the file is replaced atomically (temporary file + rename).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import ParseError
from tomlkit.items import Table
from tomlkit.toml_document import TOMLDocument

from ..atomicfile import locked, replace
from ..config import Config, parse_config
from ..errors import ConfigurationError

__all__ = ["ConfigDocument", "ConcurrentEdit", "fingerprint", "STALE"]

#: What a save based on an old copy of the file is told.
STALE = "the file changed since you opened this page; reload"


class ConcurrentEdit(Exception):
    """The file changed between reading it for a page and saving that page's edit."""

    def __init__(self) -> None:
        super().__init__(STALE)


def fingerprint(text: str) -> str:
    """The SHA-256 of a file's text (what a page remembers of the file it was made from)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _item(value: Any) -> Any:
    """A list of tables (a field mapping) as a multi-line array of inline tables: an array of
    ``[[tables]]`` would swallow the keys of a table appended after it in the file."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        array = tomlkit.array()
        for entry in value:
            inline = tomlkit.inline_table()
            inline.update(entry)
            array.append(inline)
        return array.multiline(True)
    return value


class ConfigDocument:
    """One read of the configuration file, to inspect, edit in place and save."""

    def __init__(self, path: str | Path, text: str) -> None:
        self.path = Path(path)
        self.text = text
        self.fingerprint = fingerprint(text)
        try:
            self.doc: TOMLDocument = tomlkit.parse(text)
        except ParseError as exc:
            raise ConfigurationError(
                [f"{self.path}: invalid TOML: {exc} (fix the file in an editor first)"]
            ) from None

    @classmethod
    def read(cls, path: str | Path) -> ConfigDocument:
        """Read the file (a missing file reads as an empty document, created on save)."""
        path = Path(path)
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        return cls(path, text)

    def data(self) -> dict[str, Any]:
        """The document as plain Python values."""
        return self.doc.unwrap()

    def table(self, *keys: str) -> Table:
        """The table at ``keys`` (``"orgs", "acme", "systems", "salesforce"``), made when absent;
        a new table is written as a ``[a.b.c]`` header, never inline."""
        current: Any = self.doc
        for key in keys:
            if key not in current:
                current.append(key, tomlkit.table(is_super_table=key in ("orgs", "systems")))
            current = current[key]
        return current

    def get(self, *keys: str) -> Any:
        """The plain value at ``keys``, or None."""
        current: Any = self.data()
        for key in keys:
            if not isinstance(current, dict) or key not in current:
                return None
            current = current[key]
        return current

    def remove(self, *keys: str) -> None:
        """Remove the value at ``keys`` when present."""
        parent: Any = self.doc
        for key in keys[:-1]:
            if key not in parent:
                return
            parent = parent[key]
        if keys[-1] in parent:
            del parent[keys[-1]]

    def update(self, keys: Iterable[str], values: dict[str, Any]) -> None:
        """Set the settings of the table at ``keys``: a None value removes its key, so a field
        left empty falls back to the setting's default; other keys and comments are kept."""
        table = self.table(*keys)
        for name, value in values.items():
            if value is None:
                if name in table:
                    del table[name]
            else:
                table[name] = _item(value)

    def config(self) -> Config:
        """The edited document validated as ``eventsync check`` validates the file.

        :raises ConfigurationError: every problem, worded as ``check`` words it.
        """
        return parse_config(
            self.data(), source=str(self.path), base_dir=str(self.path.resolve().parent)
        )

    def problems(self) -> list[str]:
        """What ``config()`` would refuse ([] when the document is valid)."""
        try:
            self.config()
        except ConfigurationError as exc:
            return list(exc.problems)
        return []

    def save(self) -> None:
        """Write the document over the file it was read from, atomically.

        :raises ConcurrentEdit: the file is no longer the text this document was read from.
        """
        # Two consoles saving at once: the second sees the first's file and is refused.
        with locked(self.path):
            current = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
            if fingerprint(current) != self.fingerprint:
                raise ConcurrentEdit()
            text = tomlkit.dumps(self.doc)
            self._replace(text if text.endswith("\n") or not text else text + "\n")

    def _replace(self, text: str) -> None:
        mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o644
        replace(self.path, text, mode)
        self.text = text
        self.fingerprint = fingerprint(text)
