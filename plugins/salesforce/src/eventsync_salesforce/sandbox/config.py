"""The sandbox config (custom fields and objects, validation rules, users, outbound rules).

Given as a mapping (``options["config"]``) or a path to a JSON or TOML file; structured by a
private strict cattrs converter, so a misspelt key is an error naming its path.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn


@attrs.frozen
class FieldSpec:
    """A custom field: ``{name, type, length?, external_id?, unique?, required?, values?,
    restricted?, reference_to?, relationship_name?, default?, label?}``."""

    name: str
    type: str = "string"
    label: str | None = None
    length: int | None = None
    external_id: bool = False
    unique: bool | None = None
    required: bool = False
    values: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: str | None = None
    relationship_name: str | None = None
    default: Any = None

    def as_dict(self) -> dict[str, Any]:
        """The spec with unset optional keys dropped (for :func:`metadata.custom_field`)."""
        data = {k: v for k, v in attrs.asdict(self).items() if v is not None}
        if self.unique is None:
            data["unique"] = self.external_id
        return data


@attrs.frozen
class ObjectSpec:
    """A custom object ``{name: "Ticket__c", label?, fields: [...]}``."""

    name: str
    label: str | None = None
    fields: tuple[FieldSpec, ...] = ()


@attrs.frozen
class RuleSpec:
    """A validation rule: refuse a record of ``object`` when ``condition`` (SOQL WHERE) holds."""

    object: str
    name: str
    condition: str
    message: str
    field: str | None = None


@attrs.frozen
class PermissionSetSpec:
    """A permission set ``{name, label?, permissions: ["PermissionsApiEnabled", ...]}``."""

    name: str
    label: str | None = None
    permissions: tuple[str, ...] = ()


@attrs.frozen
class UserSpec:
    """A user ``{username, last_name, first_name?, email?, password?, security_token?,
    permission_sets?}``."""

    username: str
    last_name: str = "User"
    first_name: str | None = None
    email: str | None = None
    password: str | None = None
    security_token: str = ""
    permission_sets: tuple[str, ...] = ()


@attrs.frozen
class OutboundSpec:
    """An outbound message rule.

    :ivar object: the sObject watched.
    :ivar endpoint_url: where the SOAP envelope is POSTed.
    :ivar fields: fields sent (``Id`` is always sent).
    :ivar condition: SOQL WHERE expression the record must satisfy (None: always).
    :ivar events: ``create`` and/or ``update``.
    :ivar user: username of the "User to Send As" (default: the integration user).
    :ivar required_permission: a PermissionSet permission field the *acting* user must hold
        for the rule to fire (no such Salesforce permission is documented; see
        Salesforce's documentation: this models "automation silently never fires").
    :ivar send_session_id: include a SessionId of the send-as user.
    """

    name: str
    object: str
    endpoint_url: str
    fields: tuple[str, ...] = ("Id",)
    condition: str | None = None
    events: tuple[str, ...] = ("create", "update")
    user: str | None = None
    required_permission: str | None = None
    send_session_id: bool = False


@attrs.frozen
class SandboxConfig:
    """The whole sandbox config."""

    org_id: str | None = None
    custom_fields: Mapping[str, tuple[FieldSpec, ...]] = attrs.field(factory=dict)
    custom_objects: tuple[ObjectSpec, ...] = ()
    validation_rules: tuple[RuleSpec, ...] = ()
    permission_sets: tuple[PermissionSetSpec, ...] = ()
    users: tuple[UserSpec, ...] = ()
    outbound_messages: tuple[OutboundSpec, ...] = ()


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    for cls in (
        FieldSpec,
        ObjectSpec,
        RuleSpec,
        PermissionSetSpec,
        UserSpec,
        OutboundSpec,
        SandboxConfig,
    ):
        converter.register_structure_hook(
            cls, make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True)
        )
    return converter


_CONVERTER = _make_converter()


def load(source: Mapping[str, Any] | str | Path | None) -> SandboxConfig:
    """Structure a config mapping or read it from a JSON/TOML file; ValueError listing problems."""
    if source is None:
        return SandboxConfig()
    if isinstance(source, (str, Path)):
        path = Path(source)
        text = path.read_text(encoding="utf-8")
        source = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    try:
        return _CONVERTER.structure(dict(source), SandboxConfig)
    except cattrs.BaseValidationError as exc:
        lines = cattrs.transform_error(exc, path="$.config")
        raise ValueError("invalid sandbox config:\n  " + "\n  ".join(lines)) from None
