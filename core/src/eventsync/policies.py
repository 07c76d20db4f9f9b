"""Per-field update policies: which mapped values may be written over an existing record.

A mapping entry's ``policy`` (``eventsync.models.UPDATE_POLICIES``) says when its value is
written: ``always``; ``if_empty``, only when the target field is empty; ``on_create``, only when
the record is created; ``never_clear``, never an empty value over a non-empty one. An entry
without a policy is ``always``, except a constant and a value a ``default`` transform supplied
(the source was empty): those are placeholders and apply on create only, so a sync never
overwrites what a salesperson typed with a placeholder.

Everything here is pure: the flow reads the current values (in the match query it makes
anyway) and asks ``apply_policies`` what to write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .mapping import template_paths
from .models import FieldMap, Record, RecordMapping, UpdatePolicy

__all__ = [
    "Decision",
    "is_empty",
    "entry_policy",
    "record_policies",
    "policy_fields",
    "apply_policies",
    "same_value",
]


def is_empty(value: Any) -> bool:
    """None, an empty or blank string, and an empty list count as empty."""
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def same_value(new: Any, old: Any) -> bool:
    """True when writing ``new`` over ``old`` changes nothing: both empty, equal, or equal as
    text (a CRM may answer a number or a date as a string)."""
    if is_empty(new) and is_empty(old):
        return True
    if new == old:
        return True
    if isinstance(new, bool) or isinstance(old, bool):
        return False
    if isinstance(new, (int, float)) and isinstance(old, (int, float, str)):
        try:
            return float(new) == float(old)
        except ValueError:
            return False
    return str(new) == str(old) if not isinstance(new, (dict, list)) else False


def _defaulted(field_map: FieldMap, record: Record) -> bool:
    """True when a ``default`` transform would supply this entry's value for ``record``."""
    if not any(t.name == "default" for t in field_map.transforms):
        return False
    if field_map.source is not None:
        return is_empty(record.get(field_map.source))
    return field_map.template is not None and all(
        is_empty(record.get(path)) for path in template_paths(field_map.template)
    )


def entry_policy(field_map: FieldMap, record: Record | None = None) -> UpdatePolicy:
    """The policy an entry applies with (for ``record``, when a default may have filled it)."""
    if field_map.policy is not None:
        return field_map.policy
    if field_map.constant is not None:
        return "on_create"
    if record is not None and _defaulted(field_map, record):
        return "on_create"
    return "always"


def record_policies(mapping: RecordMapping, record: Record) -> dict[str, UpdatePolicy]:
    """Every target field's policy for this record, ``always`` ones left out."""
    out: dict[str, UpdatePolicy] = {}
    for field_map in mapping.fields:
        policy = entry_policy(field_map, record)
        if policy != "always":
            out[field_map.target] = policy
    return out


def policy_fields(mapping: RecordMapping) -> tuple[str, ...]:
    """Target fields whose policy may keep a value from being written on an update: the
    fields the match query must read current values of. Empty: every update writes all."""
    return tuple(
        f.target
        for f in mapping.fields
        if f.policy not in (None, "always")
        or f.constant is not None
        or any(t.name == "default" for t in f.transforms)
    )


@attrs.frozen
class Decision:
    """What to write to one record: the fields, and each field held back with its reason."""

    write: Mapping[str, Any]
    held: Mapping[str, str]


def apply_policies(
    fields: Mapping[str, Any],
    policies: Mapping[str, UpdatePolicy],
    current: Mapping[str, Any] | None,
    *,
    creating: bool,
) -> Decision:
    """Which of ``fields`` to write. A create writes everything; an update drops ``on_create``
    fields, ``if_empty`` fields whose current value is not empty, and ``never_clear`` fields
    whose new value is empty while the current one is not. ``current`` (None: unknown) holds
    the target's values, keyed by field name in any letter case."""
    if creating:
        return Decision(dict(fields), {})
    now = {k.lower(): v for k, v in (current or {}).items()}
    write: dict[str, Any] = {}
    held: dict[str, str] = {}
    for name, value in fields.items():
        policy = policies.get(name, "always")
        before = now.get(name.lower())
        if policy == "on_create":
            held[name] = "on_create: set only when the record is created"
        elif policy == "if_empty" and (current is None or not is_empty(before)):
            held[name] = "if_empty: the record already has a value"
        elif (
            policy == "never_clear"
            and is_empty(value)
            and (current is None or not is_empty(before))
        ):
            held[name] = "never_clear: would clear a value"
        else:
            write[name] = value
    return Decision(write, held)
