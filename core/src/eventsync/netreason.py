"""Why a network call failed, in a few words ("connection refused", "host name not found"),
from the exception an HTTP client raised.

HTTP clients wrap the operating system's error several times over (requests' ConnectionError
holds urllib3's MaxRetryError, whose ``reason`` holds a NewConnectionError caused by a
ConnectionRefusedError) and print the whole chain as one long line. The operator needs the
innermost cause and what to check, so this walks the chain by the attributes every layer
sets (``reason``, ``args``, ``__cause__``, ``__context__``) without importing any client.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

__all__ = ["network_reason", "is_refused"]


def _chain(exc: BaseException, depth: int = 0) -> Iterator[BaseException]:
    if depth > 8:
        return
    yield exc
    seen: list[BaseException] = []
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        seen.append(reason)
    seen.extend(a for a in getattr(exc, "args", ()) if isinstance(a, BaseException))
    for linked in (exc.__cause__, exc.__context__):
        if isinstance(linked, BaseException):
            seen.append(linked)
    for inner in seen:
        yield from _chain(inner, depth + 1)


def network_reason(exc: BaseException) -> str:
    """The innermost cause of a failed connection, in a few words."""
    chain = list(_chain(exc))
    for err in chain:
        if isinstance(err, ssl.SSLCertVerificationError):
            return (
                f"the TLS certificate is not trusted (CERTIFICATE_VERIFY_FAILED: "
                f"{err.verify_message}); trust its authority (a CA bundle setting) or fix the host"
            )
        if isinstance(err, ssl.SSLError):
            return f"TLS failed ({err.reason or err})"
    for err in chain:
        if isinstance(err, socket.gaierror):
            return "host name not found"
        if isinstance(err, ConnectionRefusedError):
            return "connection refused (nothing listens on that host and port)"
        if isinstance(err, ConnectionResetError):
            return "connection reset by the other side"
        if isinstance(err, TimeoutError):
            return "no answer in time"
    for err in chain:
        if isinstance(err, OSError) and err.strerror:
            return err.strerror[0].lower() + err.strerror[1:]
    if any(
        "timed out" in str(err).lower() or "timeout" in type(err).__name__.lower() for err in chain
    ):
        return "no answer in time"
    return type(exc).__name__


def is_refused(exc: BaseException) -> bool:
    """True when the connection was refused or the host not found: nothing was sent."""
    return any(isinstance(e, (ConnectionRefusedError, socket.gaierror)) for e in _chain(exc))
