"""What a flow screen's pickers offer, from the discovered schemas: the CRM's objects, the
fields of the objects the screen names (and one relationship further, ``Campaign.Code__c``
style paths), and the source system's fields for mappings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import Config
from ..errors import EventsyncError
from ..models import ObjectSchema, Schema
from .state import ConsoleState

__all__ = ["Pickers", "pickers"]

Pickers = dict[str, list[str]]


def _paths(schema: Schema, obj: ObjectSchema) -> list[str]:
    """The fields of ``obj`` and, through each reference, the fields of the object it names."""
    names = [f.name for f in obj.fields]
    for field in obj.fields:
        if not field.relationship_name or not field.reference_to:
            continue
        parent = schema.object(field.reference_to[0])
        if parent is not None:
            names += [f"{field.relationship_name}.{f.name}" for f in parent.fields]
    return names


def _fields(
    state: ConsoleState, config: Config, org: str, system: str, objects: set[str]
) -> list[str]:
    if not objects:
        return []
    schema = state.schema(config, org, system, tuple(sorted(objects)))
    parents = {
        f.reference_to[0]
        for name in objects
        if (obj := schema.object(name)) is not None
        for f in obj.fields
        if f.relationship_name and f.reference_to
    }
    if parents - set(schema.objects):
        more = state.schema(config, org, system, tuple(sorted(parents | objects)))
        schema = Schema(system, {**schema.objects, **more.objects})
    found: list[str] = []
    for name in sorted(objects):
        obj = schema.object(name)
        if obj is not None:
            found += _paths(schema, obj)
    return list(dict.fromkeys(found))


def pickers(
    state: ConsoleState,
    config: Config,
    org: str,
    flow: Any,
    table: Mapping[str, Any],
    defaults: Mapping[str, Any],
) -> tuple[Pickers, str]:
    """Per setting name (and ``target``/``source``/``filter`` of the editors), the values to
    offer; and why there are none ('' when the schemas could be read)."""
    org_cfg = config.org(org)
    crm, platform = org_cfg.crm, org_cfg.event_platform
    merged = {**defaults, **table}
    crm_objects = {str(v) for k, v in merged.items() if k.endswith("_object") and v}
    platform_objects: set[str] = set()
    if flow.name in org_cfg.flows:
        wanted = flow.schema_objects(org_cfg, org_cfg.flows[flow.name])
        crm_objects |= set(wanted.get("crm", ()))
        platform_objects = set(wanted.get("platform", ()))
    try:
        every = sorted(state.schema(config, org, crm, ()).objects)
        crm_fields = _fields(state, config, org, crm, crm_objects)
        platform_fields = _fields(state, config, org, platform, platform_objects)
    except (EventsyncError, OSError) as exc:
        return {}, f"the schemas could not be read ({exc}); type the names"
    source, target = (
        (crm_fields, platform_fields)
        if flow.source_role == "crm"
        else (platform_fields, crm_fields)
    )
    found: Pickers = {"target": target, "source": source, "filter": crm_fields}
    for name in merged.keys() | {"target_object", "source_object", "crm_object"}:
        if name.endswith("_object"):
            found[name] = every
    for info_name in (
        "match_key",
        "link_field",
        "status_field",
        "ticket_code_field",
        "cancel_field",
    ):
        found[info_name] = crm_fields
    return found, ""
