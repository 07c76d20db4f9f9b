"""The sandbox's options, structured from the ``start_sandbox`` options mapping."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, Literal

import attrs
import cattrs


def _token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(24)}"


@attrs.frozen
class SandboxConfig:
    """Every sandbox option with its default (see the plugin README)."""

    port: int = 0
    state_file: str | None = None
    seed: bool = True
    organization_id: str | None = None
    event_id: str | None = None
    ticket_id: str | None = None
    ticket_code: str | None = None
    organization_name: str = "Demo Organisation"
    event_name: str = "Demo Event"
    event_slug: str = "demo-event"
    ticket_name: str = "General admission"
    seed_registrations: int = 0
    seed_questions: bool = True
    api_key: str = attrs.field(factory=lambda: _token("hopin_sk"))
    #: Which ``Authorization`` forms the API accepts: ``Bearer <key>``, the key alone, or both.
    auth_header: Literal["bearer", "raw", "both"] = "both"
    webhook_secret: str = attrs.field(factory=lambda: _token("whsec"))
    oauth_client_id: str = "sandbox-client"
    oauth_client_secret: str = attrs.field(factory=lambda: _token("oauth_cs"))
    token_ttl: float = 3600.0
    signature_header: str = "X-Hopin-Signature"
    signature_algorithm: str = "sha256"
    delivery_target: str | None = None
    delivery_signals: tuple[str, ...] = ()
    delivery_backoff: float = 0.2
    delivery_backoff_max: float = 30.0
    #: How many deliveries are sent at once (1: one after another, in order).
    delivery_concurrency: int = 1
    default_page_size: int = 25
    max_page_size: int = 100
    report_ready_after: float = 0.3
    #: Whether the attendance report lists onsite check-ins (a column and check-in-only rows).
    report_check_ins: bool = True
    fault_seed: int | None = None
    #: A latency profile (``"realistic"``, ``"none"``) or its mapping form (``eventsync.latency``).
    latency: Any = None
    latency_seed: int | None = 0


_converter = cattrs.Converter(forbid_extra_keys=True)


def load_config(options: Mapping[str, Any]) -> SandboxConfig:
    """Structure the options (unknown keys are an error naming them)."""
    try:
        config = _converter.structure(dict(options), SandboxConfig)
    except cattrs.BaseValidationError as exc:
        problems = "; ".join(cattrs.transform_error(exc, path="options"))
        raise ValueError(f"bad hopin sandbox options: {problems}") from exc
    if config.delivery_concurrency < 1:
        raise ValueError(
            "bad hopin sandbox options: options.delivery_concurrency must be 1 or more"
        )
    return config
