"""The plugin's options: ``[orgs.NAME.plugin_options.pardot_guard]``, strictly structured.

A private cattrs converter (unknown keys rejected, detailed validation) turns the table into
frozen attrs records; every problem is reported at once with its full path, for example
``$.orgs.acme.plugin_options.pardot_guard.automation_users[0].username: required field missing``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn
from cattrs.v import format_exception
from eventsync.config import FLOW_NAMES, OrgConfig
from eventsync.errors import ConfigurationError

__all__ = [
    "PLUGIN",
    "DEFAULT_PERMISSIONS",
    "PERMISSION_LABELS",
    "AutomationUser",
    "GuardOptions",
    "parse_options",
    "options_path",
    "permission_label",
]

PLUGIN = "pardot_guard"
#: "API Enabled" and "Send Email" (Salesforce's documentation).
DEFAULT_PERMISSIONS: tuple[str, ...] = ("PermissionsApiEnabled", "PermissionsEmailSingle")
#: The Setup labels of the permission fields known to exist (Salesforce's documentation).
PERMISSION_LABELS: Mapping[str, str] = {
    "PermissionsApiEnabled": "API Enabled",
    "PermissionsEmailSingle": "Send Email",
    "PermissionsEmailMass": "Mass Email",
    "PermissionsModifyAllData": "Modify All Data",
    "PermissionsViewAllData": "View All Data",
    "PermissionsCustomizeApplication": "Customize Application",
    "PermissionsViewSetup": "View Setup and Configuration",
    "PermissionsManageUsers": "Manage Users",
    "PermissionsRunFlow": "Run Flows",
    "PermissionsImportLeads": "Import Leads",
    "PermissionsTransferAnyLead": "Transfer Leads",
    "PermissionsConvertLeads": "Convert Leads",
    "PermissionsBulkApiHardDelete": "Bulk API Hard Delete",
}
DEFAULT_PERSON_RELATIONSHIPS: Mapping[str, tuple[str, ...]] = {
    "CampaignMember": ("Lead", "Contact"),
    "Lead": ("",),
    "Contact": ("",),
}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_PERMISSION = re.compile(r"^Permissions[A-Za-z0-9]+$")

ConsentValue = str | bool


def permission_label(name: str) -> str:
    """``'Send Email' (PermissionsEmailSingle)`` for a known permission, else the API name."""
    label = PERMISSION_LABELS.get(name)
    return f"'{label}' ({name})" if label else name


@attrs.frozen
class AutomationUser:
    """A Salesforce user that automation runs as.

    :ivar username: the Salesforce username (``b2bma@acme.example``).
    :ivar role: what the user is for, shown in findings ("Account Engagement connector user",
        "LeanData", "outbound message user to send as").
    :ivar permissions: permission fields this user must hold; None uses ``permissions``.
    """

    username: str
    role: str = "automation user"
    permissions: tuple[str, ...] | None = None


@attrs.frozen
class GuardOptions:
    """Everything pardot_guard can be told for one organisation.

    :ivar automation_users: users checked by preflight.
    :ivar permissions: PermissionSet permission fields every automation user must hold.
    :ivar gate_flows: flows whose records the runtime gate admits or denies.
    :ivar check_opt_out: deny people whose ``opt_out_field`` is true.
    :ivar opt_out_field: the opt-out checkbox on Lead and Contact.
    :ivar confirmed_opt_in: the org uses Confirmed Opt-In: deny people not confirmed.
    :ivar consent_field: the field (on Lead and Contact) holding the confirmation state.
    :ivar consent_values: values of ``consent_field`` that count as confirmed.
    :ivar person_relationships: per CRM source object, the relationships that lead to the
        person ("" is the record itself); given entries add to the defaults.
    :ivar registration_email_field: the email field of an event-platform registration, used to
        find the person in the CRM (export flow).
    :ivar lookup_objects: CRM objects searched by email for that person.
    :ivar admit_unknown_people: with Confirmed Opt-In, admit a registration whose email matches
        nobody in the CRM.
    """

    automation_users: tuple[AutomationUser, ...] = ()
    permissions: tuple[str, ...] = DEFAULT_PERMISSIONS
    gate_flows: tuple[str, ...] = ("import_registrations", "export_registrations")
    check_opt_out: bool = True
    opt_out_field: str = "HasOptedOutOfEmail"
    confirmed_opt_in: bool = False
    consent_field: str | None = None
    consent_values: tuple[ConsentValue, ...] = (True,)
    person_relationships: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=lambda: dict(DEFAULT_PERSON_RELATIONSHIPS)
    )
    registration_email_field: str = "email"
    lookup_objects: tuple[str, ...] = ("Contact", "Lead")
    admit_unknown_people: bool = True

    def permissions_for(self, user: AutomationUser) -> tuple[str, ...]:
        """The permissions ``user`` must hold."""
        return self.permissions if user.permissions is None else user.permissions

    def person_fields(self) -> tuple[str, ...]:
        """The fields the gate reads on a person record (opt-out and consent)."""
        fields: list[str] = []
        if self.check_opt_out:
            fields.append(self.opt_out_field)
        if self.confirmed_opt_in and self.consent_field:
            fields.append(self.consent_field)
        return tuple(fields)


class _Invalid(ValueError):
    """A structuring failure whose message is written for the user."""


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def names(value: Any, _: type) -> tuple[str, ...]:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise _Invalid(f"expected a list of names, e.g. {json.dumps([value])}")
        bad = [v for v in value if not isinstance(v, str)]
        if bad:
            raise _Invalid(f"expected names (text), got {bad!r}")
        return tuple(value)

    def strict_bool(value: Any, _: type) -> bool:
        if not isinstance(value, bool):
            raise _Invalid(f"expected true or false, not {value!r}")
        return value

    def strict_str(value: Any, _: type) -> str:
        if not isinstance(value, str):
            raise _Invalid(f"expected text, not {value!r}")
        return value

    def consent_values(value: Any, _: type) -> tuple[ConsentValue, ...]:
        if isinstance(value, (str, bool)) or not isinstance(value, (list, tuple)):
            raise _Invalid(f"expected a list of accepted values, e.g. {json.dumps([value])}")
        bad = [v for v in value if not isinstance(v, (str, bool))]
        if bad:
            raise _Invalid(f"accepted values are text (picklist values) or true/false, got {bad!r}")
        return tuple(value)

    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], names)
    conv.register_structure_hook_func(lambda t: t == tuple[ConsentValue, ...], consent_values)
    conv.register_structure_hook(bool, strict_bool)
    conv.register_structure_hook(str, strict_str)
    for cls in (AutomationUser, GuardOptions):
        conv.register_structure_hook(
            cls, make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True)
        )
    return conv


_converter = _make_converter()


def options_path(org: OrgConfig, key: str = "") -> str:
    """``$.orgs.NAME.plugin_options.pardot_guard[.key]``."""
    base = f"$.orgs.{org.name}.plugin_options.{PLUGIN}"
    return f"{base}.{key}" if key else base


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, _Invalid):
        return str(exc)
    return format_exception(exc, type_)


def _clean(line: str) -> list[str]:
    line = re.sub(r"\['([^']*)'\]", r".\1", line)
    if " @ " not in line:
        return [line]
    message, path = line.rsplit(" @ ", 1)
    extra = re.fullmatch(r"extra fields found \((.*)\)", message)
    if extra:
        return [
            f"{path}.{key.strip()}: unknown option (check the spelling in docs/pardot_guard.md)"
            for key in extra.group(1).split(",")
        ]
    return [f"{path}: {message}"]


def _semantic(options: GuardOptions, org: OrgConfig) -> list[str]:
    problems: list[str] = []

    def path(key: str) -> str:
        return options_path(org, key)

    def check_name(key: str, value: str, dotted: bool = False) -> None:
        parts = value.split(".") if dotted else [value]
        if not all(_NAME.match(p) for p in parts):
            problems.append(f"{path(key)}: {value!r} is not a Salesforce field or object name")

    for i, user in enumerate(options.automation_users):
        if "@" not in user.username:
            problems.append(
                f"{path(f'automation_users[{i}].username')}: {user.username!r} is not a "
                f"Salesforce username (they look like an email address)"
            )
        for j, perm in enumerate(user.permissions or ()):
            if not _PERMISSION.match(perm):
                problems.append(
                    f"{path(f'automation_users[{i}].permissions[{j}]')}: {perm!r} is not a "
                    f"PermissionSet permission field (they look like PermissionsApiEnabled)"
                )
    for j, perm in enumerate(options.permissions):
        if not _PERMISSION.match(perm):
            problems.append(
                f"{path(f'permissions[{j}]')}: {perm!r} is not a PermissionSet permission "
                f"field (they look like PermissionsApiEnabled)"
            )
    for i, flow in enumerate(options.gate_flows):
        if flow not in FLOW_NAMES:
            problems.append(
                f"{path(f'gate_flows[{i}]')}: unknown flow {flow!r} (known: {', '.join(FLOW_NAMES)})"
            )
    check_name("opt_out_field", options.opt_out_field)
    if options.confirmed_opt_in:
        if not options.consent_field:
            problems.append(
                f"{path('consent_field')}: required when confirmed_opt_in = true; name the "
                f'Lead/Contact field that records the confirmation, e.g. "Confirmed_Opt_In__c"'
            )
        if not options.consent_values:
            problems.append(
                f"{path('consent_values')}: give at least one value that counts as confirmed"
            )
    if options.consent_field:
        check_name("consent_field", options.consent_field)
    for obj, relationships in options.person_relationships.items():
        check_name(f"person_relationships.{obj}", obj)
        for rel in relationships:
            if rel:
                check_name(f"person_relationships.{obj}", rel)
    for i, obj in enumerate(options.lookup_objects):
        check_name(f"lookup_objects[{i}]", obj)
    return problems


def parse_options(org: OrgConfig) -> GuardOptions:
    """The org's pardot_guard options.

    :raises ConfigurationError: listing every problem, each with its ``$.orgs...`` path.
    """
    raw = org.options_for(PLUGIN)
    heading = f"{options_path(org)}: pardot_guard options"
    if not isinstance(raw, Mapping):
        raise ConfigurationError([f"{options_path(org)}: must be a table"], heading=heading)
    try:
        options = _converter.structure(dict(raw), GuardOptions)
    except (cattrs.ClassValidationError, cattrs.IterableValidationError) as exc:
        lines = cattrs.transform_error(exc, path=options_path(org), format_exception=_format)
        raise ConfigurationError(
            [out for line in lines for out in _clean(line)], heading=heading
        ) from None
    # Given relationships add to (or replace, object by object) the defaults.
    options = attrs.evolve(
        options,
        person_relationships={**DEFAULT_PERSON_RELATIONSHIPS, **options.person_relationships},
    )
    problems = _semantic(options, org)
    if problems:
        raise ConfigurationError(problems, heading=heading)
    return options
