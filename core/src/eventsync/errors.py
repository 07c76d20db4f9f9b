"""The error taxonomy: the class of an exception tells the engine what to do with the failure.

``eventsync.decisions.decide`` maps each class to what happens; docs/errors.md has the table
(what the engine does, where the operator sees it, what to do):

* ``ConfigurationError``: stop before any sync; raised while running, stop that flow until a
  restart. The user fixes the config file.
* ``AuthenticationError``: pause that organisation, nothing dead-lettered; the user fixes the
  credentials.
* ``DiscoveryError``: stop the flow until a restart; the schema or access is wrong.
* ``MappingError``: dead-letter the records; the mapping is wrong.
* ``RetryableError``: back off and try again (429, 5xx, UNABLE_TO_LOCK_ROW, timeouts).
* ``RecordError``: dead-letter that one record, keeping the remote error text.
* ``FatalError``: a remote failure that retrying cannot fix and that is not about one record.

Every message says what happened, where, and what to do. Secrets never appear in them.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "EventsyncError",
    "ConfigurationError",
    "Problem",
    "AuthenticationError",
    "DiscoveryError",
    "MappingError",
    "RemoteError",
    "RetryableError",
    "RecordError",
    "FatalError",
    "NoPluginForSystem",
    "PluginLoadError",
    "BadNotification",
]


class EventsyncError(Exception):
    """Base class of every error eventsync raises on purpose."""


class Problem(str):
    """One line of a multi-problem report: ``"$.path: what is wrong (how to fix)"``."""


class _ProblemList(EventsyncError):
    """An error that carries every problem found, so one run reports all of them."""

    heading = "problems"

    def __init__(self, problems: Sequence[str], heading: str | None = None) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        if heading is not None:
            self.heading = heading
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{self.heading} ({len(self.problems)}):\n{lines}")


class ConfigurationError(_ProblemList):
    """The configuration is invalid; nothing syncs until it is fixed."""

    heading = "configuration problems"


class MappingError(_ProblemList):
    """A field mapping does not fit the discovered schema of its source or target."""

    heading = "mapping problems"


class AuthenticationError(EventsyncError):
    """A system refused the credentials of an organisation.

    ``error`` and ``description`` carry the remote system's own words (for Salesforce the OAuth
    ``error`` and ``error_description``) so the operator can act on them.
    """

    def __init__(self, system: str, error: str, description: str = "", hint: str = "") -> None:
        self.system = system
        self.error = error
        self.description = description
        self.hint = hint
        text = f"{system}: authentication failed: {error}"
        if description:
            text += f": {description}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class DiscoveryError(EventsyncError):
    """A schema could not be discovered (object missing, no access, remote failure)."""


class RemoteError(EventsyncError):
    """A remote system answered with an error.

    ``code`` is the remote error code (``UNABLE_TO_LOCK_ROW``, ``HTTP_503`` ...), ``message``
    the remote error text kept verbatim for dead letters, ``fields`` the fields it names.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        system: str = "",
        fields: Sequence[str] = (),
        status: int | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.system = system
        self.fields = tuple(fields)
        self.status = status
        prefix = f"{system}: " if system else ""
        where = f" [{', '.join(self.fields)}]" if self.fields else ""
        super().__init__(f"{prefix}{code}: {message}{where}")


class RetryableError(RemoteError):
    """A transient failure: back off (at least ``retry_after`` seconds when given) and retry."""

    def __init__(self, code: str, message: str, *, retry_after: float | None = None, **kw) -> None:
        self.retry_after = retry_after
        super().__init__(code, message, **kw)


class RecordError(RemoteError):
    """One record was refused (validation rule, required field, duplicate): dead-letter it."""


class FatalError(RemoteError):
    """A remote failure that retrying will not fix and that is not about one record."""


class NoPluginForSystem(EventsyncError):
    """No enabled plugin answered a per-system (firstresult) hook."""

    def __init__(self, hook: str, system: str, enabled: Sequence[str] = ()) -> None:
        self.hook = hook
        self.system = system
        names = ", ".join(sorted(enabled)) or "none"
        super().__init__(
            f"no plugin answered {hook}() for system {system!r} (enabled plugins: {names}); "
            f"install the plugin for {system!r} or enable it for this organisation"
        )


class PluginLoadError(EventsyncError):
    """An entry-point plugin failed to import; names its distribution."""

    def __init__(self, name: str, distribution: str, cause: BaseException) -> None:
        self.name = name
        self.distribution = distribution
        super().__init__(
            f"plugin {name!r} from distribution {distribution!r} failed to load: "
            f"{type(cause).__name__}: {cause} (reinstall it, or block it with "
            f"EVENTSYNC_DISABLE_PLUGINS={name})"
        )


class BadNotification(EventsyncError):
    """An inbound webhook or outbound message was rejected; nothing was stored.

    ``status`` is the 4xx HTTP status to answer with.
    """

    def __init__(self, status: int, message: str) -> None:
        if not 400 <= status < 500:
            raise ValueError(f"BadNotification needs a 4xx status, got {status}")
        self.status = status
        self.message = message
        super().__init__(f"{status}: {message}")
