"""The plugin's Connection: simple-salesforce in session mode, renewed transparently.

simple-salesforce renews a session on ``401 INVALID_SESSION_ID`` by calling its
``_salesforce_login_partial``; in session mode that is None, so the connection installs its
own renewal there (the one extension point the client offers). Calls that bypass that path
(Bulk 2.0) are renewed by :meth:`SalesforceConnection.call`. When the app rotates refresh
tokens, each renewal's new refresh token is saved and used for the next one (``rotation``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

from eventsync import backoff
from eventsync.errors import AuthenticationError, RetryableError
from eventsync.models import ApiUsage, SystemSettings
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from . import auth, errors, rotation, transport
from .schema import SchemaCache

T = TypeVar("T")


class SalesforceConnection:
    """An authenticated connection to one org (eventsync ``Connection``)."""

    system = "salesforce"

    def __init__(self, settings: SystemSettings) -> None:
        self.org = settings.org
        self.settings = settings
        self.usage: ApiUsage | None = None
        self.renewals = 0
        self.max_retries = int(settings.get("max_retries", 4))
        self.retry_backoff = float(settings.get("retry_backoff", 1.0))
        self.batch_size = min(int(settings.get("batch_size", 200)), 200)
        self.bulk_threshold = int(settings.get("bulk_threshold", 10000))
        self.composite = bool(settings.get("composite", True))
        self.bulk_wait = float(settings.get("bulk_wait", 5.0))
        self.api_version = str(settings.get("api_version", "59.0")).lstrip("v")
        self.schema = SchemaCache(ttl=float(settings.get("schema_ttl", 3600.0)))
        self._lock = threading.Lock()
        #: Held while writing an object that locks its parent in one process (``parents``).
        self.parent_lock = threading.Lock()
        self.http = transport.make_session(
            settings.get("ca_bundle"), float(settings.get("timeout", 60.0)), self._on_usage
        )
        token = self._obtain()
        self.instance_url = token.instance_url
        self.sf = Salesforce(
            instance_url=token.instance_url,
            session_id=token.access_token,
            session=self.http,
            version=self.api_version,
        )
        self.sf._salesforce_login_partial = functools.partial(self._renew)  # see module docstring

    def _obtain(self) -> auth.Token:
        """Run the grant. A refused refresh token is retried once with the one another
        process saved meanwhile (``rotation``); a rotated one is saved and used from now on."""
        try:
            token = auth.obtain_token(self.settings, self.http)
        except AuthenticationError as exc:
            fresher = rotation.saved_elsewhere(self.settings)
            if exc.error != "invalid_grant" or fresher is None:
                raise
            self.settings = fresher
            token = auth.obtain_token(self.settings, self.http)
        self.settings = rotation.keep_rotated(self.settings, token)
        return token

    def _on_usage(self, usage: ApiUsage) -> None:
        self.usage = usage

    def _renew(self) -> tuple[str, str]:
        """Obtain a new session (called by simple-salesforce on INVALID_SESSION_ID)."""
        if self.settings.get("grant") == "access_token":
            raise AuthenticationError(
                errors.SYSTEM,
                "INVALID_SESSION_ID",
                "Session expired or invalid",
                "a given access token cannot be renewed; configure a grant",
            )
        with self._lock:
            token = self._obtain()
            self.renewals += 1
            self.instance_url = token.instance_url
            parsed = urlparse(token.instance_url)
            instance = parsed.hostname or ""
            if parsed.port not in (None, 443):
                instance += f":{parsed.port}"
            return token.access_token, instance

    def renew(self) -> None:
        """Renew the session now."""
        self.sf.session_id, self.sf.sf_instance = self._renew()
        self.sf._generate_headers()

    def call(self, what: str, fn: Callable[[], T], *, idempotent: bool = True) -> T:
        """Run ``fn`` with retries on transient failures and one renewal on an expired session.

        :param idempotent: False for a create: a failure after which it may have happened
            (``errors.outcome_unknown``) is raised at once as ``OutcomeUnknown`` instead of
            being resent, so the caller can look before it creates again.
        :raises OutcomeUnknown: a non-idempotent call's answer was lost.
        :raises RetryableError: still failing after ``max_retries`` attempts.
        :raises AuthenticationError: the session cannot be renewed.
        :raises FatalError: any other failure.
        """
        renewed = False
        attempt = 0
        while True:
            try:
                return fn()
            except SalesforceExpiredSession as exc:
                if renewed:
                    raise errors.classify(exc) from None
                renewed = True
                self.renew()
                continue
            except Exception as exc:  # noqa: BLE001 - classified below
                if not isinstance(exc, (SalesforceError, OSError)) and not _is_requests(exc):
                    raise
                failure = errors.classify(exc)
                if not idempotent and errors.outcome_unknown(exc, failure):
                    assert isinstance(failure, RetryableError)
                    raise errors.OutcomeUnknown(
                        "OUTCOME_UNKNOWN",
                        f"{what}: {failure.code}: {failure.message} (it may have taken effect; "
                        f"looked up before it is sent again)",
                        system=errors.SYSTEM,
                        status=failure.status,
                    ) from None
                if not isinstance(failure, RetryableError) or attempt >= self.max_retries:
                    raise failure from None
                if failure.retry_after and failure.retry_after > 60:
                    raise failure from None
                self.sleep(attempt)
                attempt += 1

    def sleep(self, attempt: int) -> None:
        """Exponential backoff with jitter (``retry_backoff * 2**attempt`` seconds) through
        ``eventsync.backoff``, so the test kit's ``no_backoff`` switch removes the wait."""
        backoff.wait(backoff.delay(attempt + 1, base=self.retry_backoff, cap=60.0))

    def restful(
        self, path: str, method: str = "GET", *, idempotent: bool = True, **kwargs: Any
    ) -> Any:
        """A REST call relative to the versioned base URL, with retries (see ``call``)."""
        return self.call(
            f"{method} {path}",
            lambda: self.sf.restful(path, method=method, **kwargs),
            idempotent=idempotent,
        )

    def __repr__(self) -> str:
        return f"SalesforceConnection(org={self.org!r}, instance={self.instance_url!r})"


def _is_requests(exc: BaseException) -> bool:
    import requests

    return isinstance(exc, requests.RequestException)
