"""Leveled, structured logs of the engine (docs/operating.md).

Every line the engine writes about a record carries its context as structured fields: ``org``,
``flow``, ``entity`` and ``target`` (the target record's id) where known, passed through the
standard ``extra=`` mechanism (``fields(...)`` builds it). ``configure`` installs one handler
on the ``eventsync`` logger, writing either readable text (the message, then ``key=value``
pairs) or one JSON object a line (python-json-logger, a well-kept formatter, does the JSON).

What is logged at INFO is work: a batch outcome, a poll that found changes, a dead letter, an
authentication failure. An idle engine logs nothing at INFO. Secret values of the engine's
environment are replaced by ``***`` in every line (``SecretsFilter``), a second line of defence
behind messages that are written never to name one.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

__all__ = ["LEVELS", "FORMATS", "CONTEXT", "configure", "fields", "SecretsFilter"]

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
#: The structured fields a line may carry, in the order text lines show them.
CONTEXT = ("org", "flow", "entity", "target", "system", "outcome", "count", "code")
_HANDLER_NAME = "eventsync-configured"
#: Secrets shorter than this are not redacted: replacing "1" everywhere would garble lines.
_MIN_SECRET = 6


def fields(**values: Any) -> dict[str, Any]:
    """The ``extra=`` of a log call: the context fields that are known (None values dropped)."""
    return {k: v for k, v in values.items() if v is not None and v != ""}


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...``; values with spaces are quoted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The line, then the context fields the record carries."""
        line = super().format(record)
        pairs = [
            f"{key}={_quoted(getattr(record, key))}" for key in CONTEXT if hasattr(record, key)
        ]
        if not pairs:
            return line
        head, sep, rest = line.partition("\n")  # a traceback stays below the pairs
        return f"{head} {' '.join(pairs)}{sep}{rest}"


def _quoted(value: Any) -> str:
    text = str(value)
    return f'"{text}"' if not text or any(c in text for c in ' "=') else text


class SecretsFilter(logging.Filter):
    """Replaces every known secret value by ``***`` in a record's message and fields."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: tuple[str, ...] = ()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        """Add secret values (longest first, so a secret containing another is hidden whole)."""
        known = set(self.secrets) | {s for s in secrets if s and len(s) >= _MIN_SECRET}
        self.secrets = tuple(sorted(known, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drops it."""
        if not self.secrets:
            return True
        message = record.getMessage()
        clean = self._redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        for key in CONTEXT:
            value = getattr(record, key, None)
            if isinstance(value, str):
                setattr(record, key, self._redact(value))
        return True

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def configure(
    level: str = "info",
    fmt: str = "text",
    *,
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> logging.Handler:
    """Send log lines to ``stream`` (stderr): eventsync's and its plugins' (``eventsync*``
    loggers) at ``level`` and above, other libraries' from WARNING. The handler sits on the root
    logger, so that a plugin's lines are formatted and cleared of secrets too.

    Replaces a handler an earlier call installed (a test or an embedding host may call it more
    than once); a host's own handlers are left alone. Returns the handler.
    """
    if level.lower() not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{levelname}{name}{message}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(TextFormatter())
    threshold = logging.getLevelName(level.upper())
    handler.addFilter(_OursOrWarnings(threshold))
    handler.addFilter(SecretsFilter(secrets))
    root.addHandler(handler)
    root.setLevel(min(threshold, root.getEffectiveLevel()))
    logging.getLogger("eventsync").setLevel(threshold)
    return handler


class _OursOrWarnings(logging.Filter):
    """eventsync's and its plugins' lines from the chosen level, other libraries' from WARNING
    (waitress, urllib3 ... would otherwise log every connection at DEBUG)."""

    def __init__(self, threshold: int) -> None:
        super().__init__()
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether the record is shown."""
        ours = record.name == "eventsync" or record.name.startswith(("eventsync.", "eventsync_"))
        return record.levelno >= (self.threshold if ours else max(self.threshold, logging.WARNING))
