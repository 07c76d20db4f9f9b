"""A requests client of the sandbox's sign-in pages, for tests without a browser.

It reads each page's form (the hidden fields included) with the standard library's HTML parser
and posts it back, as a browser would, so a test can run authorize, login and consent over
real sockets. ``tests/browser`` drives the same pages in Chromium.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import requests

from ..transport import PinnedSession
from .org import INTEGRATION_USERNAME

if TYPE_CHECKING:
    from .server import SalesforceSandbox

__all__ = ["WebSignIn", "parse_forms"]


class _Forms(HTMLParser):
    """The forms of a page: action, fields (hidden and typed) and submit buttons; alerts."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.alerts: list[str] = []
        self._alert = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Note a form, its fields and buttons, and whether an alert starts."""
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}, "buttons": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")
        elif tag == "button" and self.forms and a.get("name"):
            self.forms[-1]["buttons"][a.get("value", "")] = a["name"]
        self._alert = a.get("role") == "alert"

    def handle_data(self, data: str) -> None:
        """Keep the text of an alert."""
        if self._alert and data.strip():
            self.alerts.append(data.strip())
            self._alert = False


def parse_forms(html: str) -> _Forms:
    """The forms and alerts of an HTML page."""
    parser = _Forms()
    parser.feed(html)
    return parser


class WebSignIn:
    """Drives the sandbox's authorize, login and consent pages with requests, as a browser
    would (it submits the forms it is given, hidden fields included)."""

    def __init__(self, sandbox: SalesforceSandbox) -> None:
        self.sandbox = sandbox
        self.http = PinnedSession(verify=sandbox.ca_bundle, timeout=30)

    @staticmethod
    def alerts(page: requests.Response) -> list[str]:
        """The error messages a page shows."""
        return parse_forms(page.text).alerts

    def authorize(self, url: str) -> requests.Response:
        """GET an authorize URL, without following a redirect."""
        return self.http.get(url, allow_redirects=False)

    def submit(self, page: requests.Response, **fields: str) -> requests.Response:
        """Post the page's form with its hidden fields and ``fields``; ``decision`` picks a
        button."""
        [form] = parse_forms(page.text).forms
        data = {**form["fields"], **fields}
        return self.http.post(self.sandbox.url + form["action"], data=data, allow_redirects=False)

    def consent_page(
        self, url: str, username: str = INTEGRATION_USERNAME, password: str = ""
    ) -> requests.Response:
        """The consent page after logging in on the authorize URL's login page."""
        login = self.authorize(url)
        if login.status_code != 200:
            raise AssertionError(f"no login page (HTTP {login.status_code}): {login.text}")
        password = password or self.sandbox.info()["password"]
        consent = self.submit(login, username=username, password=password)
        if "Allow Access?" not in consent.text:
            raise AssertionError(f"no consent page: {self.alerts(consent) or consent.text}")
        return consent

    def callback(self, url: str, decision: str = "allow", **login: str) -> dict[str, str]:
        """Log in, decide, and return the query parameters sent to the callback."""
        answer = self.submit(self.consent_page(url, **login), decision=decision)
        if answer.status_code != 302:
            raise AssertionError(f"no redirect to the callback: {answer.text}")
        return dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
