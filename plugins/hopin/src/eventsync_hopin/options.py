"""The plugin's settings: ``[orgs.NAME.systems.hopin]`` options, structured and checked.

Secrets are never options; they are named by ``<name>_env`` keys and read through
``SystemSettings.secret``: ``api_key``, ``access_token``, ``refresh_token``, ``client_secret``,
``webhook_secret``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs
import cattrs
from eventsync.errors import ConfigurationError
from eventsync.models import SystemProfile, SystemSettings
from eventsync.settings import Invalid, setting

SECRET_NAMES = ("api_key", "access_token", "refresh_token", "client_secret", "webhook_secret")

#: Columns of the attendance report by the field name the plugin gives them.
DEFAULT_REPORT_COLUMNS: Mapping[str, str] = {
    "registrationId": "Registration ID",
    "email": "Email",
    "firstName": "First Name",
    "lastName": "Last Name",
    "ticketId": "Ticket ID",
    "joinedAt": "Join Time",
    "leftAt": "Leave Time",
    "durationSeconds": "Duration (seconds)",
    "sessions": "Sessions",
    "checkedInAt": "Check-in Time",
}

#: Registration fields eventsync derives, by the wire attribute read for each (a dotted path
#: reaches into a nested object). None of these attribute names is documented by Hopin.
DEFAULT_REGISTRATION_ATTRIBUTES: Mapping[str, str] = {
    "utmSource": "utmSource",
    "utmMedium": "utmMedium",
    "utmCampaign": "utmCampaign",
    "utmTerm": "utmTerm",
    "utmContent": "utmContent",
    "referrer": "referrer",
    "channel": "channel",
    "checkedInAt": "checkedInAt",
    "badgePrintedAt": "badgePrintedAt",
}

DEFAULT_SIGNALS = (
    "registrationCreated",
    "registrationUpdated",
    "magicLinkCreated",
    "magicLinkAccepted",
    "attendanceRecorded",
)


def _known_registration_fields(_: Any, attribute: Any, value: Mapping[str, str]) -> None:
    unknown = sorted(set(value) - set(DEFAULT_REGISTRATION_ATTRIBUTES))
    if unknown:
        raise Invalid(
            f"{attribute.name}: unknown field {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(DEFAULT_REGISTRATION_ATTRIBUTES)})"
        )


@attrs.frozen
class HopinOptions:
    """Every non-secret option with its default (documented in the README)."""

    base_url: str = setting(
        "https://api.events.ringcentral.com",
        label="Base url",
        help="API host; https://api.hopin.com or the sandbox URL also work",
    )
    platform_url: str = setting(
        "https://events.ringcentral.com",
        label="Platform url",
        help="OAuth host (/oauth/authorize, /oauth/token); https://hopin.com in the Hopin era",
    )
    auth: Literal["api_key", "oauth"] = setting(
        "api_key", label="Auth", help="api_key (organisation key as bearer token) or oauth"
    )
    auth_header: Literal["bearer", "raw"] = setting(
        "bearer",
        label="Authorization header form",
        help='bearer sends "Authorization: Bearer <key>" (what existing clients send); raw sends '
        '"Authorization: <key>" (the current API reference\'s samples). When the server refuses '
        "the configured form, authenticate (and so eventsync check) tries the other once and "
        "names the one accepted; syncing uses only the configured form",
    )
    oauth_client_id: str = setting(
        "", label="Oauth client id", help="OAuth app id and resource indicator"
    )
    oauth_resource: str = setting(
        "", label="Oauth resource", help="OAuth app id and resource indicator"
    )
    organization_id: str = setting(
        "",
        label="Organization id",
        help="Hopin organisation external id; required when the key reaches several",
    )
    event_id: str = setting(
        "",
        label="Event id",
        help="the event whose registrations, tickets, magic links and reports are synced",
    )
    timeout: float = setting(30.0, label="Timeout", help="seconds, on every HTTP call")
    retries: int = setting(4, label="Retries", help="retries on 429 / 5xx / connection errors")
    backoff_factor: float = setting(
        0.5, label="Backoff factor", help="exponential backoff between retries (seconds)"
    )
    backoff_max: float = setting(
        60.0, label="Backoff max", help="exponential backoff between retries (seconds)"
    )
    retry_after_max: float = setting(
        300.0, label="Retry after max", help="cap on an honoured Retry-After (seconds)"
    )
    # 32, not 8: an invitation is one create, so this bounds the import to about
    # max_parallel / latency invitations a second. At Hopin's ~120 ms, 8 in flight (~65/s) left
    # a 50-a-second campaign queueing for seconds; Hopin documents no rate limit, and a 429's
    # Retry-After holds every call of the organisation (the shared Throttle), so a burst that
    # is too much is slowed, not failed.
    max_parallel: int = setting(
        32,
        label="Max parallel calls",
        help="most API calls this organisation has in flight at once, across all workers "
        "(Hopin documents no limit; a 429's Retry-After holds all of them; reads by id and "
        "magic links run this many in parallel)",
    )
    recent_skew: float = setting(
        5.0,
        label="Recent skew (s)",
        help="how far before the oldest mark of a batch its list read starts (clock "
        "difference, commit lag and webhook delivery delay between Hopin and the state store; "
        "what the list misses is read by id)",
    )
    page_size: int = setting(
        100, label="Page size", help="page size asked for (a PullRequest's page_size wins)"
    )
    page_size_param: str = setting(
        "perPage", label="Page size param", help="query parameter carrying it"
    )
    filter_encoding: Literal["filter", "bracket", "json_body"] = setting(
        "filter",
        label="Filter encoding",
        help="filter (filter[email][eq]=), bracket (email[eq]=) or json_body (JSON body on the GET)",
    )
    sort_param: str = setting(
        "sort", label="Sort param", help="sort sent with watermark pulls (empty since_sort: none)"
    )
    since_sort: str = setting(
        "updatedAt",
        label="Since sort",
        help="sort sent with watermark pulls (empty since_sort: none)",
    )
    ticket_code_attribute: str = setting(
        "",
        label="Ticket code attribute",
        help="ticket attribute holding the integration code; empty: take the part after the last = of ticket_url_attribute",
    )
    ticket_url_attribute: str = setting(
        "registrationUrl",
        label="Ticket url attribute",
        help="ticket attribute holding the ticket's registration link",
    )
    magic_link_status_attribute: str = setting(
        "status",
        label="Magic link status attribute",
        help="magic-link attribute with the invitation status",
    )
    magic_link_lookup: bool = setting(
        True,
        label="Magic link lookup",
        help="look before creating on insert too (upsert always looks)",
    )
    magic_link_blank_name: str = setting(
        "-",
        label="Magic link blank name",
        help="sent for an empty first/last name (as a production client does)",
    )
    registration_attributes: Mapping[str, str] = setting(
        factory=lambda: dict(DEFAULT_REGISTRATION_ATTRIBUTES),
        label="Registration attributes",
        help="wire attribute read for each derived registration field (UTM parameters, referrer, "
        'channel, check-in and badge times); a dotted path reaches into a nested object, "" '
        "leaves the field empty; the fields you leave out keep their defaults",
        validator=_known_registration_fields,
    )
    onsite_channel_values: tuple[str, ...] = setting(
        ("onsite",),
        label="Onsite channel values",
        help="channel values (any case) that make a registration onsite (field onsite = true)",
    )
    attendance_check_ins: bool = setting(
        False,
        label="Attendance from check-ins",
        help="also count registrations checked in onsite that the attendance report lacks "
        "(one paged read of the event's registrations per report)",
    )
    registration_update_fields: tuple[str, ...] = setting(
        ("metadata",),
        label="Registration update fields",
        help="registration attributes update may change",
    )
    webhook_signature_header: str = setting(
        "X-Hopin-Signature", label="Webhook signature header", help="header carrying the signature"
    )
    webhook_signature_algorithm: str = setting(
        "sha256", label="Webhook signature algorithm", help="HMAC digest: sha256, sha1 or sha512"
    )
    webhook_url: str = setting(
        "",
        label="Webhook url",
        help="when set, `eventsync run` and `eventsync subscribe` create a dataSubscription to "
        "this URL and renew it; `eventsync check` changes nothing",
    )
    webhook_type: str = setting(
        "webhook", label="Webhook type", help="subscription configuration.type and signals"
    )
    webhook_signals: tuple[str, ...] = setting(
        DEFAULT_SIGNALS, label="Webhook signals", help="subscription configuration.type and signals"
    )
    webhook_ttl: float = setting(
        7 * 86400.0,
        label="Webhook ttl",
        help="subscription lifetime, and how early it is renewed (seconds)",
    )
    webhook_renew_before: float = setting(
        86400.0,
        label="Webhook renew before",
        help="subscription lifetime, and how early it is renewed (seconds)",
    )
    webhook_retire_after: float = setting(
        60.0,
        label="Webhook retire after",
        help="a stale dataSubscription eventsync made (an earlier webhook_url) is ended by "
        "renewing it to expire this many seconds ahead (Hopin documents no delete route)",
    )
    webhook_replay_window: float = setting(
        86400.0,
        label="Webhook replay window",
        help="seconds a delivery is accepted after its timestamp, and its id remembered: a "
        "re-send within it stores nothing, an older one is refused (400)",
    )
    webhook_clock_skew: float = setting(
        300.0,
        label="Webhook clock skew",
        help="seconds a delivery's timestamp may be ahead of this machine's clock",
    )
    webhook_timestamp_field: str = setting(
        "occurredAt",
        label="Webhook timestamp field",
        help="payload field with the delivery's time (covered by the body signature); empty: "
        "deliveries are not aged, only their ids remembered for the window",
    )
    webhook_max_bytes: int = setting(
        1024 * 1024,
        label="Webhook max bytes",
        help="largest delivery body accepted (413 above)",
    )
    webhook_max_depth: int = setting(
        32,
        label="Webhook max depth",
        help="deepest JSON nesting accepted (400 above), checked before the body is parsed",
    )
    webhook_records: bool = setting(
        True,
        label="Webhook records",
        help="a delivery whose data is a whole registration with its updatedAt is synced "
        "from the payload, without reading it back, unless an older copy than the one last "
        "synced (false: every delivery is read back from the API)",
    )
    report_type: str = setting("attendance", label="Report type", help="report type for attendance")
    report_columns: Mapping[str, str] = setting(
        factory=lambda: dict(DEFAULT_REPORT_COLUMNS),
        label="Report columns",
        help="CSV header for each attendance field",
    )
    report_status_attribute: str = setting(
        "status", label="Report status attribute", help="report polling"
    )
    report_ready_status: str = setting(
        "completed", label="Report ready status", help="report polling"
    )
    report_failed_status: str = setting(
        "failed", label="Report failed status", help="report polling"
    )
    report_poll_interval: float = setting(1.0, label="Report poll interval", help="seconds")
    report_timeout: float = setting(300.0, label="Report timeout", help="seconds")

    def registration_paths(self) -> dict[str, str]:
        """Each derived registration field's wire path: the defaults, then the configured ones."""
        return {**DEFAULT_REGISTRATION_ATTRIBUTES, **self.registration_attributes}


@attrs.frozen
class HopinSettings(HopinOptions):
    """The whole ``[orgs.NAME.systems.hopin]`` table as declared to eventsync: the options and
    the ``*_env`` settings naming the secrets."""

    api_key_env: str | None = setting(
        None,
        label="API key",
        help='variable holding the organisation API key (auth = "api_key")',
        secret=True,
    )
    access_token_env: str | None = setting(
        None,
        label="OAuth access token",
        help="OAuth secrets; a 401 refreshes once and resends",
        secret=True,
    )
    refresh_token_env: str | None = setting(
        None,
        label="OAuth refresh token",
        help="OAuth secrets; a 401 refreshes once and resends",
        secret=True,
    )
    client_secret_env: str | None = setting(
        None,
        label="OAuth client secret",
        help="OAuth secrets; a 401 refreshes once and resends",
        secret=True,
    )
    webhook_secret_env: str | None = setting(
        None,
        label="Webhook signing secret",
        help="variable holding the dataSubscription signing secret",
        secret=True,
    )


#: Hopin as eventsync sees it: an event platform, its settings and its person fields.
PROFILE = SystemProfile(
    system="hopin",
    role="event_platform",
    label="Hopin (RingCentral Events)",
    settings=HopinSettings,
    max_batch=200,
    case_sensitive_fields=True,
    person_fields={"first_name": "firstName", "last_name": "lastName", "email": "email"},
)


_converter = cattrs.Converter(forbid_extra_keys=True)


#: Options already structured, by their org and settings (``load_options`` runs per delivery).
_loaded: dict[str, HopinOptions] = {}
_LOADED_MAX = 256


#: The last settings objects structured, by identity (kept with them): the engine hands every
#: delivery of an org the same settings object, so most calls need not even build the key.
_by_identity: dict[int, tuple[SystemSettings, HopinOptions]] = {}


def load_options(settings: SystemSettings) -> HopinOptions:
    """Structure ``settings.options`` (``*_env`` keys aside); ConfigurationError lists every problem."""
    hit = _by_identity.get(id(settings))
    if hit is not None and hit[0] is settings:
        return hit[1]
    options = _load_options(settings)
    if len(_by_identity) >= _LOADED_MAX:
        _by_identity.clear()
    _by_identity[id(settings)] = (settings, options)
    return options


def _load_options(settings: SystemSettings) -> HopinOptions:
    raw: dict[str, Any] = {k: v for k, v in settings.options.items() if not k.endswith("_env")}
    # Every webhook delivery asks: structuring and checking cost more than the rest of parsing
    # it. HopinOptions is frozen, so one instance serves every caller with the same settings.
    key = repr((settings.org, sorted(raw.items())))
    cached = _loaded.get(key)
    if cached is None:
        cached = _structure(settings.org, raw)
        if len(_loaded) >= _LOADED_MAX:
            _loaded.clear()
        _loaded[key] = cached
    return cached


def _structure(org: str, raw: dict[str, Any]) -> HopinOptions:
    base = f"$.orgs.{org}.systems.hopin"
    try:
        options = _converter.structure(raw, HopinOptions)
    except cattrs.BaseValidationError as exc:
        # A validator's message names its setting: "<setting>: what is wrong".
        invalid = [f"{base}.{e}" for e in exc.exceptions if isinstance(e, Invalid)]
        problems = invalid or [
            p.replace("$", base, 1) for p in cattrs.transform_error(exc, path="$")
        ]
        raise ConfigurationError(problems) from exc
    problems = []
    if not options.base_url.startswith(("http://", "https://")):
        problems.append(
            f"{base}.base_url: must be an http(s) URL, e.g. https://api.events.ringcentral.com"
        )
    if options.webhook_url and not options.webhook_url.startswith(("http://", "https://")):
        problems.append(
            f"{base}.webhook_url: must be an http(s) URL Hopin can reach, e.g. "
            f"https://sync.example.com/hooks/{org}/hopin"
        )
    if options.webhook_retire_after <= 0:
        problems.append(f"{base}.webhook_retire_after: must be above 0")
    if options.webhook_signature_algorithm not in ("sha256", "sha1", "sha512"):
        problems.append(f"{base}.webhook_signature_algorithm: one of sha256, sha1, sha512")
    if options.page_size < 1:
        problems.append(f"{base}.page_size: must be at least 1")
    if not 1 <= options.max_parallel <= 64:
        problems.append(f"{base}.max_parallel: must be between 1 and 64")
    if options.recent_skew < 0:
        problems.append(f"{base}.recent_skew: must be 0 or more")
    for name in ("webhook_replay_window", "webhook_max_bytes", "webhook_max_depth"):
        if getattr(options, name) <= 0:
            problems.append(f"{base}.{name}: must be above 0")
    if options.webhook_clock_skew < 0:
        problems.append(f"{base}.webhook_clock_skew: must be 0 or more")
    if problems:
        raise ConfigurationError(problems)
    return options
