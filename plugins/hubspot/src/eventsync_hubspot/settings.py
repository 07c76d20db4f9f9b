"""The settings of ``[orgs.X.systems.hubspot]``, declared for forms, docs and validation."""

from __future__ import annotations

from typing import Literal

import attrs
from eventsync.settings import setting

SYSTEM = "hubspot"
#: The most inputs one batch call (create, update, upsert, read) accepts.
MAX_BATCH = 100
#: The most records one search page returns.
MAX_PAGE = 200
#: The most results one search query reaches through its ``after`` paging.
SEARCH_CAP = 10_000


@attrs.frozen
class HubSpotSettings:
    """One organisation's connection to a HubSpot account (portal)."""

    portal_id: str = setting(
        label="Portal id",
        help="The HubSpot account (Hub ID, shown in the account menu); the token must belong "
        "to it and webhook deliveries for any other portal are refused.",
    )
    auth: Literal["private_app", "oauth"] = setting(
        "private_app",
        label="Authentication",
        help="private_app: a private app's access token; oauth: a public app's OAuth 2.0 "
        "refresh token, renewed and rotated by eventsync.",
    )
    access_token_env: str | None = setting(
        None,
        label="Access token variable",
        help="Name of the environment variable holding the private app's access token "
        "(Settings > Integrations > Private apps > Auth); for auth = private_app.",
        secret=True,
    )
    client_id: str | None = setting(
        None, label="OAuth client id", help="The public app's client id (auth = oauth)."
    )
    client_secret_env: str | None = setting(
        None,
        label="Client secret variable",
        help="Name of the environment variable holding the app's client secret: OAuth token "
        "refreshes use it, and it signs the app's webhooks (X-HubSpot-Signature-v3).",
        secret=True,
    )
    refresh_token_env: str | None = setting(
        None,
        label="Refresh token variable",
        help="Name of the environment variable holding the first OAuth refresh token (from "
        "the authorization code); later ones are kept in token_file.",
        secret=True,
    )
    token_file: str | None = setting(
        None,
        label="Token file",
        help="Where the current OAuth refresh token is kept (written atomically, mode 0600): "
        "HubSpot may rotate it on every refresh; required for auth = oauth.",
    )
    webhook_url: str | None = setting(
        None,
        label="Webhook target URL",
        help="The target URL configured in the HubSpot app, exactly as HubSpot calls it "
        "(its signature covers it); default: rebuilt from the request's Host header.",
    )
    url: str = setting(
        "https://api.hubapi.com",
        label="API URL",
        help="Base URL of the HubSpot API (change it only for a sandbox or a proxy).",
    )
    page_size: int = setting(
        100, label="Search page size", help=f"Records per search page, 1 to {MAX_PAGE}."
    )
    search_cap: int = setting(
        SEARCH_CAP,
        label="Search result cap",
        help="How many results one search query can page through (HubSpot: 10,000); a longer "
        "scan starts a new query from the last timestamp seen.",
    )
    timeout: float = setting(
        30.0, label="Timeout (seconds)", help="How long one API call may take before it is retried."
    )
    max_rate_wait: float = setting(
        10.0,
        label="Longest rate-limit wait (seconds)",
        help="How long a call may wait for the ten-second rate window to reopen (or for a "
        "429's Retry-After) before the batch is retried later instead.",
    )
    webhook_tolerance: float = setting(
        300.0,
        label="Webhook age limit (seconds)",
        help="How old X-HubSpot-Request-Timestamp may be (HubSpot: reject after 5 minutes).",
    )

    def problems(self) -> list[str]:
        """What the types cannot say: which secrets each kind of authentication needs."""
        if self.auth == "private_app" and not self.access_token_env:
            return ["access_token_env: required with auth = private_app"]
        if self.auth == "oauth":
            missing = [
                name
                for name in ("client_id", "client_secret_env", "refresh_token_env", "token_file")
                if not getattr(self, name)
            ]
            return [f"{name}: required with auth = oauth" for name in missing]
        return []
