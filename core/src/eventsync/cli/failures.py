"""What an ``eventsync`` command says when it fails outside its own error handling: one or two
lines saying what is wrong and how to fix it, and an exit code, never a traceback (``eventsync
--debug CMD`` shows it). docs/troubleshooting.md lists the operator mistakes this covers.

Written here rather than with a library: the mapping from eventsync's own error classes (and
the few OS errors an operator causes) to exit codes is this project's contract, not a
formatting concern.
"""

from __future__ import annotations

import errno

import attrs

from ..errors import (
    AuthenticationError,
    ConfigurationError,
    EventsyncError,
    PluginLoadError,
    RemoteError,
    RetryableError,
)
from .common import EXIT_PROBLEMS, EXIT_UNAVAILABLE, EXIT_USAGE

__all__ = ["Failure", "explain"]

#: OS errors a person causes, by errno: what to tell them (the error's own text comes first).
_OS_HINTS = {
    errno.EADDRINUSE: (
        EXIT_USAGE,
        "another process listens on this address; stop it, or choose another with --listen "
        "or [engine] listen",
    ),
    errno.EADDRNOTAVAIL: (
        EXIT_USAGE,
        "this machine has no such address; give --listen or [engine] listen one of its "
        "own, 127.0.0.1 or 0.0.0.0",
    ),
    errno.EACCES: (EXIT_USAGE, "this user may not do that; fix the permissions or the path"),
    errno.EPERM: (EXIT_USAGE, "this user may not do that; fix the permissions or the path"),
    errno.ENOSPC: (EXIT_PROBLEMS, "the disk is full; free some space and run it again"),
    errno.EROFS: (EXIT_USAGE, "the file system is read-only; choose a writable path"),
    errno.ENOENT: (EXIT_USAGE, "check the path"),
    errno.EISDIR: (EXIT_USAGE, "a directory was given where a file was expected"),
}


@attrs.frozen
class Failure:
    """How a command that raised ends: its exit code and the lines printed to stderr."""

    code: int
    lines: tuple[str, ...]


def explain(exc: BaseException) -> Failure:
    """The exit code and message for an exception no command handled itself."""
    if isinstance(exc, ConfigurationError):
        return Failure(EXIT_USAGE, tuple(f"error: {p}" for p in exc.problems))
    if isinstance(exc, PluginLoadError):
        return Failure(EXIT_USAGE, (f"error: {exc}",))
    if isinstance(exc, AuthenticationError):
        return Failure(EXIT_UNAVAILABLE, (f"error: {exc}",))
    if isinstance(exc, RetryableError):
        return Failure(
            EXIT_UNAVAILABLE,
            (
                f"error: {exc}",
                "the system is unreachable or failing; check the URL and the network, then "
                "try again",
            ),
        )
    if isinstance(exc, (RemoteError, EventsyncError)):
        from ..engine import StateUnavailable

        code = EXIT_UNAVAILABLE if isinstance(exc, StateUnavailable) else EXIT_PROBLEMS
        return Failure(code, (f"error: {exc}",))
    if isinstance(exc, OSError):
        return _os_failure(exc)
    return Failure(
        EXIT_PROBLEMS,
        (
            f"internal error: {type(exc).__name__}: {_first_line(exc)}",
            "this is a bug in eventsync or a plugin; run it again as `eventsync --debug ...` "
            "for the traceback, and report it",
        ),
    )


def _os_failure(exc: OSError) -> Failure:
    code, hint = _OS_HINTS.get(exc.errno or 0, (EXIT_PROBLEMS, "check the path and the machine"))
    what = exc.strerror or _first_line(exc)
    where = f" ({exc.filename})" if exc.filename else ""
    return Failure(code, (f"error: {what}{where}", hint))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"
