"""HTTP to the Hopin API: one requests Session per organisation, a timeout on every call,
retries with exponential backoff that honour ``Retry-After`` on 429 and 5xx, and the mapping
of HTTP failures onto eventsync's error taxonomy.

POST is retried here only on 429 (the server says it did not act); every other method on 429,
500, 502, 503 and 504. A create that failed with a 5xx may still have happened, so the caller
retries it itself after looking first (look-before-create in ``push.py``).

Every call of an organisation goes through one ``eventsync.throttle.Throttle``: at most
``max_parallel`` in flight across all workers, and once an answer says ``Retry-After``, no call
of any worker starts before it passed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import requests
from eventsync import backoff
from eventsync.errors import AuthenticationError, FatalError, RecordError, RetryableError
from eventsync.netreason import is_refused, network_reason
from eventsync.throttle import Throttle
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
from urllib3.util.retry import Retry

from .options import HopinOptions

SYSTEM = "hopin"
#: The two forms of the ``Authorization`` header (setting ``auth_header``), as shown to people.
AUTH_FORMS = {"bearer": "Authorization: Bearer <key>", "raw": "Authorization: <key>"}
_UNSAFE = frozenset({"POST"})
_UNSAFE_RETRY_STATUSES = frozenset({429})


def make_retry(options: HopinOptions, throttle: Throttle | None = None) -> Retry:
    """The urllib3 Retry policy for one organisation's session; a ``Retry-After`` it honours
    also holds ``throttle``, so every worker of the organisation waits it out."""
    cap = options.retry_after_max

    class _HopinRetry(Retry):
        def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
            """Never repeat a POST unless the server said it did not act (429)."""
            if method.upper() in _UNSAFE and status_code not in _UNSAFE_RETRY_STATUSES:
                return False
            return super().is_retry(method, status_code, has_retry_after)

        def parse_retry_after(self, retry_after: str) -> float:
            """``Retry-After`` in seconds, capped at ``retry_after_max``."""
            return min(super().parse_retry_after(retry_after), cap)

        def sleep(self, response: Any = None) -> None:
            """Wait through ``eventsync.backoff`` so its test switch applies."""
            retry_after = self.get_retry_after(response) if response is not None else None
            if retry_after is not None and throttle is not None:
                throttle.hold(retry_after)
            backoff.wait(retry_after if retry_after is not None else self.get_backoff_time())

    return _HopinRetry(
        total=options.retries,
        connect=options.retries,
        read=0,
        status=options.retries,
        allowed_methods=None,
        status_forcelist=(429, 500, 502, 503, 504),
        backoff_factor=options.backoff_factor,
        backoff_max=options.backoff_max,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def error_text(response: requests.Response) -> str:
    """The remote error in its own words: JSON:API ``errors[].detail``, OAuth
    ``error_description``, or the start of the body (Hopin's error body is not documented)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason or ""
    if isinstance(body, Mapping):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            parts = [
                str(e.get("detail") or e.get("title") or e) if isinstance(e, Mapping) else str(e)
                for e in errors
            ]
            return "; ".join(parts)
        for key in ("error_description", "message", "error", "detail"):
            if body.get(key):
                return str(body[key])
    return json.dumps(body)[:300]


def raise_for(response: requests.Response, where: str) -> None:
    """Raise the taxonomy error for a failed response (nothing for 2xx/3xx)."""
    status = response.status_code
    if status < 400:
        return
    text = error_text(response)
    code = f"HTTP_{status}"
    message = f"{where}: {text}" if text else where
    if status == 401:
        raise AuthenticationError(
            SYSTEM, code, message, hint="check the API key or OAuth token for this organisation"
        )
    if status == 429 or status >= 500:
        retry_after = _retry_after(response)
        raise RetryableError(code, message, retry_after=retry_after, system=SYSTEM, status=status)
    if status == 403:
        raise FatalError(code, message, system=SYSTEM, status=status)
    raise RecordError(code, message, system=SYSTEM, status=status)


def authorization(token: str, form: str) -> str:
    """The ``Authorization`` header value for ``token`` in ``form`` (``bearer`` or ``raw``)."""
    return token if form == "raw" else f"Bearer {token}"


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class HopinHttp:
    """The HTTP client of one organisation."""

    def __init__(
        self,
        options: HopinOptions,
        token: Callable[[], str],
        refresh: Callable[[], bool] | None = None,
    ) -> None:
        self.options = options
        self.base_url = options.base_url.rstrip("/")
        self._token = token
        self._refresh = refresh
        self.session = requests.Session()
        #: Bounds this organisation's calls in flight and shares Retry-After across workers.
        self.throttle = Throttle(options.max_parallel)
        adapter = HTTPAdapter(
            max_retries=make_retry(options, self.throttle),
            pool_connections=4,
            pool_maxsize=max(options.max_parallel, 10),
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"Accept": "application/json", "User-Agent": "eventsync-hopin"})
        self.calls = 0

    def url(self, path_or_url: str) -> str:
        """An absolute URL: ``links.next`` values are used as they are."""
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return f"{self.base_url}{path_or_url}"

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        stream: bool = False,
        check: bool = True,
        authorize: bool = True,
        auth_form: str | None = None,
    ) -> requests.Response:
        """Send one request (retried by the session's policy); raise the taxonomy error on failure.

        A 401 with OAuth credentials refreshes the token once and resends. ``authorize=False``
        sends no credentials (a report file on another host); ``auth_form`` overrides the
        configured ``auth_header`` form (the authentication check tries the other one).
        """
        form = auth_form or self.options.auth_header
        url = self.url(path_or_url)
        where = f"{method} {url.split('?')[0]}"
        for attempt in (1, 2):
            headers = {"Authorization": authorization(self._token(), form)} if authorize else {}
            if json_body is not None:
                headers["Content-Type"] = "application/json"
            try:
                self.calls += 1
                with self.throttle.slot():
                    response = self.session.request(
                        method,
                        url,
                        params=params,
                        json=json_body,
                        headers=headers,
                        timeout=self.options.timeout,
                        stream=stream,
                    )
            except (requests.Timeout, requests.ConnectionError) as exc:
                if not _is_timeout(exc):
                    raise RetryableError(
                        "CONNECTION", f"{where}: {network_reason(exc)}", system=SYSTEM
                    ) from exc
                raise RetryableError(
                    "TIMEOUT", f"{where}: no answer within {self.options.timeout}s", system=SYSTEM
                ) from exc
            except requests.RequestException as exc:
                raise RetryableError(
                    "CONNECTION", f"{where}: {type(exc).__name__}: {_short(exc)}", system=SYSTEM
                ) from exc
            if (
                response.status_code == 401
                and attempt == 1
                and self._refresh is not None
                and self._refresh()
            ):
                continue
            break
        if check:
            raise_for(response, where)
        return response

    def get_json(self, path_or_url: str, **kw: Any) -> Any:
        """GET and decode JSON; FatalError when the body is not JSON."""
        response = self.request("GET", path_or_url, **kw)
        try:
            return response.json()
        except ValueError as exc:
            raise FatalError(
                "BAD_BODY", f"GET {path_or_url}: answer is not JSON", system=SYSTEM
            ) from exc

    def get_body(self, path_or_url: str, **kw: Any) -> bytes:
        """GET and return the raw body (decode it with ``decode_json``): a page held before
        it is read is several times smaller as the text it came as."""
        return self.request("GET", path_or_url, **kw).content

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()


def decode_json(body: bytes, what: str) -> Any:
    """A body from ``get_body``, decoded; FatalError (naming ``what``) when it is not JSON."""
    try:
        return json.loads(body)
    except ValueError as exc:
        raise FatalError("BAD_BODY", f"GET {what}: answer is not JSON", system=SYSTEM) from exc


def _is_timeout(exc: Exception) -> bool:
    if isinstance(exc, requests.Timeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(reason, NewConnectionError) or is_refused(exc):
        # urllib3's NewConnectionError is a ConnectTimeoutError too, but a refused connection
        # or an unknown host is an answer, not a wait.
        return False
    return isinstance(reason, (ReadTimeoutError, ConnectTimeoutError))


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "..."
