"""The HTTP session every Salesforce call goes through.

* It pins certificate verification to the configured ``ca_bundle`` (or the system store):
  plain ``requests`` lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` override a session's
  ``verify``, which would silently trust a different CA than configured.
* It reads ``Sforce-Limit-Info`` from every response (REST, Bulk 2.0, retries) into a
  callback, so the engine's budget sees all API usage.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import requests
from eventsync.models import ApiUsage

_USAGE = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")


def parse_limit_info(header: str | None) -> ApiUsage | None:
    """``api-usage=10018/100000`` (possibly with more parts) as an ApiUsage, or None."""
    if not header:
        return None
    match = _USAGE.search(header)
    if match is None:
        return None
    return ApiUsage(used=int(match.group(1)), limit=int(match.group(2)))


class PinnedSession(requests.Session):
    """A requests Session whose ``verify`` and timeout cannot be overridden by the environment."""

    def __init__(self, verify: str | bool = True, timeout: float = 60.0) -> None:
        super().__init__()
        self.verify = verify
        self.timeout = timeout

    def merge_environment_settings(
        self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        """Keep the configured ``verify`` instead of ``REQUESTS_CA_BUNDLE``."""
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None or verify is True:
            settings["verify"] = self.verify
        return settings

    def request(
        self,
        method: str | bytes,
        url: str | bytes,
        *args: Any,  # type: ignore[override]
        **kwargs: Any,
    ) -> Any:
        """Send with the session's default timeout unless one is given."""
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)  # type: ignore[arg-type]


def make_session(
    ca_bundle: str | None, timeout: float, on_usage: Callable[[ApiUsage], None]
) -> PinnedSession:
    """A PinnedSession reporting API usage to ``on_usage``."""
    session = PinnedSession(verify=ca_bundle or True, timeout=timeout)

    def _hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        usage = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
        if usage is not None:
            on_usage(usage)

    session.hooks["response"].append(_hook)
    return session
