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
from eventsync.models import SystemSettings

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
}

DEFAULT_SIGNALS = (
    "registrationCreated",
    "registrationUpdated",
    "magicLinkCreated",
    "magicLinkAccepted",
    "attendanceRecorded",
)


@attrs.frozen
class HopinOptions:
    """Every non-secret option with its default (documented in the README)."""

    base_url: str = "https://api.events.ringcentral.com"
    platform_url: str = "https://events.ringcentral.com"
    auth: Literal["api_key", "oauth"] = "api_key"
    oauth_client_id: str = ""
    oauth_resource: str = ""
    organization_id: str = ""
    event_id: str = ""
    timeout: float = 30.0
    retries: int = 4
    backoff_factor: float = 0.5
    backoff_max: float = 60.0
    retry_after_max: float = 300.0
    page_size: int = 100
    page_size_param: str = "perPage"
    filter_encoding: Literal["filter", "bracket", "json_body"] = "filter"
    sort_param: str = "sort"
    since_sort: str = "updatedAt"
    ticket_code_attribute: str = ""
    ticket_url_attribute: str = "registrationUrl"
    magic_link_status_attribute: str = "status"
    magic_link_lookup: bool = True
    magic_link_blank_name: str = "-"
    registration_update_fields: tuple[str, ...] = ("metadata",)
    webhook_signature_header: str = "X-Hopin-Signature"
    webhook_signature_algorithm: str = "sha256"
    webhook_url: str = ""
    webhook_type: str = "webhook"
    webhook_signals: tuple[str, ...] = DEFAULT_SIGNALS
    webhook_ttl: float = 7 * 86400.0
    webhook_renew_before: float = 86400.0
    report_type: str = "attendance"
    report_columns: Mapping[str, str] = attrs.field(factory=lambda: dict(DEFAULT_REPORT_COLUMNS))
    report_status_attribute: str = "status"
    report_ready_status: str = "completed"
    report_failed_status: str = "failed"
    report_poll_interval: float = 1.0
    report_timeout: float = 300.0


_converter = cattrs.Converter(forbid_extra_keys=True)


def load_options(settings: SystemSettings) -> HopinOptions:
    """Structure ``settings.options`` (``*_env`` keys aside); ConfigurationError lists every problem."""
    raw: dict[str, Any] = {k: v for k, v in settings.options.items() if not k.endswith("_env")}
    base = f"$.orgs.{settings.org}.systems.hopin"
    try:
        options = _converter.structure(raw, HopinOptions)
    except cattrs.BaseValidationError as exc:
        problems = [p.replace("$", base, 1) for p in cattrs.transform_error(exc, path="$")]
        raise ConfigurationError(problems) from exc
    problems = []
    if not options.base_url.startswith(("http://", "https://")):
        problems.append(
            f"{base}.base_url: must be an http(s) URL, e.g. https://api.events.ringcentral.com"
        )
    if options.webhook_signature_algorithm not in ("sha256", "sha1", "sha512"):
        problems.append(f"{base}.webhook_signature_algorithm: one of sha256, sha1, sha512")
    if options.page_size < 1:
        problems.append(f"{base}.page_size: must be at least 1")
    if problems:
        raise ConfigurationError(problems)
    return options
