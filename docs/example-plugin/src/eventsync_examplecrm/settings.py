"""The settings of ``[orgs.X.systems.examplecrm]``, declared for forms, docs and validation."""

from __future__ import annotations

import attrs
from eventsync.settings import setting

SYSTEM = "examplecrm"
#: The most records one batch call of the ExampleCRM API accepts (reads and writes).
MAX_BATCH = 50
#: The most records one search page returns.
MAX_PAGE = 100


@attrs.frozen
class ExampleCrmSettings:
    """One organisation's connection to ExampleCRM."""

    url: str = setting(
        label="API URL",
        help="Base URL of the ExampleCRM API, e.g. https://api.examplecrm.test.",
    )
    api_key_env: str = setting(
        label="API key variable",
        help="Name of the environment variable holding a private-app API key "
        "(ExampleCRM: Settings > Integrations > Private apps).",
        secret=True,
    )
    account_id: str = setting(
        label="Account id",
        help="The account the API key belongs to (Settings > Account); webhook deliveries "
        "for any other account are refused.",
    )
    webhook_secret_env: str | None = setting(
        None,
        label="Webhook secret variable",
        help="Name of the environment variable holding the app's webhook signing secret; "
        "without it every webhook delivery is refused.",
        secret=True,
    )
    page_size: int = setting(
        MAX_PAGE,
        label="Search page size",
        help=f"Records per search page, 1 to {MAX_PAGE}; a pull's own page_size wins.",
    )
    timeout: float = setting(
        10.0, label="Timeout (seconds)", help="How long one API call may take before it is retried."
    )
    webhook_tolerance: float = setting(
        300.0,
        label="Webhook age limit (seconds)",
        help="How old a signed delivery may be; older ones are refused as replays.",
    )
