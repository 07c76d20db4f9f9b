"""Field mapping: apply a RecordMapping to a record, and validate it against schemas.

``map_record`` is core's implementation of the hook of the same name (it runs last, so a
plugin may answer first or wrap it). ``validate_mapping`` checks a mapping against the
discovered schemas before any sync and reports every problem, each naming its entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import MappingError
from .hookspecs import TransformFn, hookimpl
from .models import FieldMap, ObjectSchema, Record, RecordMapping, Schema
from .transforms import OUTPUT_TYPES

__all__ = [
    "did_you_mean",
    "resolve_path",
    "apply_mapping",
    "map_record",
    "validate_mapping",
    "template_paths",
    "entry_name",
]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")

_TEXT = {
    "string",
    "textarea",
    "email",
    "phone",
    "url",
    "picklist",
    "multipicklist",
    "id",
    "reference",
}
_NUMBER = {"int", "double", "currency", "percent"}
# Which source types may feed which target types without a transform.
_COMPATIBLE: dict[str, set[str]] = {
    **{
        t: _TEXT | _NUMBER | {"boolean", "date", "datetime", "time"} for t in ("string", "textarea")
    },
    "email": _TEXT,
    "phone": _TEXT | _NUMBER,
    "url": _TEXT,
    "picklist": _TEXT | {"boolean"} | _NUMBER,
    "multipicklist": _TEXT,
    "id": {"id", "reference", "string"},
    "reference": {"id", "reference", "string"},
    **{t: _NUMBER for t in _NUMBER},
    "boolean": {"boolean"},
    "date": {"date", "datetime"},
    "datetime": {"datetime"},
    "time": {"time"},
}


def did_you_mean(obj: ObjectSchema, name: str) -> str:
    """A hint when ``name`` differs from a field of ``obj`` only by letter case (on a system
    whose field names are case-sensitive), else ""."""
    near = obj.field_ignoring_case(name)
    if near is not None and near.name != name and obj.case_sensitive:
        return f" (field names are case-sensitive here: did you mean {near.name!r}?)"
    return ""


def template_paths(template: str) -> list[str]:
    """The source field paths a template refers to (``"{firstName} {lastName}"``)."""
    return _PLACEHOLDER.findall(template)


def entry_name(mapping: RecordMapping, field_map: FieldMap) -> str:
    """How errors name a mapping entry: ``mapping 'export' -> Lead.LastName``."""
    label = f"mapping {mapping.name!r} " if mapping.name else "mapping "
    return f"{label}-> {mapping.target_object}.{field_map.target}"


def _render(template: str, record: Record) -> str:
    def value(match: re.Match[str]) -> str:
        found = record.get(match.group(1))
        return "" if found is None else str(found)

    return _PLACEHOLDER.sub(value, template).strip()


def apply_mapping(
    record: Record,
    mapping: RecordMapping,
    target: ObjectSchema | None,
    transforms: Mapping[str, TransformFn],
) -> dict[str, Any]:
    """Compute the target field values of ``record``.

    :raises MappingError: a transform refused a value, or a value is not one of a restricted
        picklist's values; every such problem of the record is listed.
    """
    out: dict[str, Any] = {}
    problems: list[str] = []
    for field_map in mapping.fields:
        if field_map.source is not None:
            value = record.get(field_map.source)
        elif field_map.template is not None:
            value = _render(field_map.template, record)
        else:
            value = field_map.constant
        target_field = target.field(field_map.target) if target is not None else None
        try:
            for transform in field_map.transforms:
                value = transforms[transform.name](value, transform.args, target_field)
        except (ValueError, TypeError, KeyError) as exc:
            problems.append(f"{entry_name(mapping, field_map)}: {exc}")
            continue
        if (
            target_field is not None
            and target_field.restricted_picklist
            and value not in (None, "")
            and str(value) not in target_field.picklist_values
        ):
            problems.append(
                f"{entry_name(mapping, field_map)}: {value!r} is not an allowed value "
                f"(allowed: {', '.join(target_field.picklist_values)}); add a value_map transform"
            )
            continue
        out[field_map.target] = value
    if problems:
        raise MappingError(problems, heading=f"record {record.id or '(new)'} could not be mapped")
    return out


@hookimpl(trylast=True)
def map_record(
    record: Record,
    mapping: RecordMapping,
    target: ObjectSchema | None,
    transforms: Mapping[str, TransformFn],
) -> dict[str, Any]:
    """Core's field mapper (see ``apply_mapping``)."""
    return apply_mapping(record, mapping, target, transforms)


def resolve_path(schema: Schema, obj: ObjectSchema, path: str) -> tuple[str | None, str | None]:
    """Follow a dotted field path through relationships.

    :returns: ``(field type, None)`` when it resolves, ``(None, problem)`` otherwise.
    """
    parts = path.split(".")
    current = obj
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if last:
            found = current.field(part)
            if found is None:
                return None, (
                    f"source field {path!r} does not exist on {current.name}"
                    f"{did_you_mean(current, part)}"
                )
            return found.type, None
        rel = current.relationship(part)
        if rel is None:
            # JSON-shaped sources (Hopin) nest plain fields: a "json"/"any" field ends the check.
            plain = current.field(part)
            if plain is not None and plain.type in {"json", "any"}:
                return "any", None
            return None, f"{part!r} in {path!r} is not a relationship of {current.name}"
        parent_name = rel.reference_to[0] if rel.reference_to else None
        parent = schema.object(parent_name) if parent_name else None
        if parent is None:
            return None, (
                f"{current.name}.{part} points to {parent_name or 'an unknown object'}, "
                f"which was not discovered; add it to the objects to describe"
            )
        current = parent
    return None, None  # pragma: no cover - loop always returns


def validate_mapping(
    mapping: RecordMapping,
    source: Schema,
    target: Schema,
    *,
    operation: str,
    transforms: Mapping[str, TransformFn],
    where: str = "",
    provided: Iterable[str] = (),
) -> list[str]:
    """Every problem of ``mapping`` against the discovered schemas; empty when it fits.

    ``provided`` names target fields the flow itself sets (never "required but unmapped").

    Checks: unknown source or target object or field, type mismatch, target not createable
    (insert/upsert) or not updateable (update/upsert), required target field unmapped (insert
    and upsert), picklist constant or value-map output not allowed, unknown transform, and an
    entry that gives not exactly one of source, constant and template.
    """
    prefix = f"{where}: " if where else ""
    problems: list[str] = []
    source_obj = source.object(mapping.source_object)
    target_obj = target.object(mapping.target_object)
    if source_obj is None:
        problems.append(
            f"{prefix}source object {mapping.source_object!r} does not exist in {source.system}"
        )
    if target_obj is None:
        problems.append(
            f"{prefix}target object {mapping.target_object!r} does not exist in {target.system}"
        )
    if target_obj is None:
        return problems

    for field_map in mapping.fields:
        name = f"{prefix}{entry_name(mapping, field_map)}"
        given = [
            field_map.source is not None,
            field_map.constant is not None,
            field_map.template is not None,
        ]
        if sum(given) != 1:
            problems.append(f"{name}: give exactly one of source, constant or template")
            continue
        target_field = target_obj.field(field_map.target)
        if target_field is None:
            problems.append(
                f"{name}: target field {field_map.target!r} does not exist on {target_obj.name}"
                f"{did_you_mean(target_obj, field_map.target)}"
            )
            continue
        if operation in {"insert", "upsert"} and not target_field.createable:
            problems.append(f"{name}: {target_obj.name}.{target_field.name} is not createable")
        if operation in {"update", "upsert"} and not target_field.updateable:
            problems.append(f"{name}: {target_obj.name}.{target_field.name} is not updateable")

        value_type: str | None = None
        if field_map.source is not None and source_obj is not None:
            value_type, problem = resolve_path(source, source_obj, field_map.source)
            if problem:
                problems.append(f"{name}: {problem}")
                continue
        elif field_map.template is not None:
            value_type = "string"
            for path in template_paths(field_map.template):
                if source_obj is not None:
                    _, problem = resolve_path(source, source_obj, path)
                    if problem:
                        problems.append(f"{name}: template {problem}")
        elif field_map.constant is not None:
            value_type = _constant_type(field_map.constant)

        unknown = [t.name for t in field_map.transforms if t.name not in transforms]
        if unknown:
            problems.append(
                f"{name}: unknown transform {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(sorted(transforms))})"
            )
            continue
        for transform in field_map.transforms:
            produced = OUTPUT_TYPES.get(transform.name, "any")
            if produced is not None:
                value_type = produced
            if transform.name == "value_map":
                problems.extend(_check_value_map(name, transform.args, target_field))

        if value_type and value_type not in {"any", "json"}:
            accepted = _COMPATIBLE.get(target_field.type)
            if accepted is not None and value_type not in accepted:
                problems.append(
                    f"{name}: type mismatch: a {value_type} value cannot be written to "
                    f"{target_field.type} field {target_obj.name}.{target_field.name}"
                    + _hint(value_type, target_field.type)
                )
        if (
            field_map.constant is not None
            and not field_map.transforms
            and target_field.restricted_picklist
            and str(field_map.constant) not in target_field.picklist_values
        ):
            problems.append(
                f"{name}: {field_map.constant!r} is not an allowed value of picklist "
                f"{target_obj.name}.{target_field.name} (allowed: {', '.join(target_field.picklist_values)})"
            )

    if operation in {"insert", "upsert"}:
        mapped = {f.target.lower() for f in mapping.fields} | {p.lower() for p in provided}
        for target_field in target_obj.fields:
            if target_field.required_on_create and target_field.name.lower() not in mapped:
                problems.append(
                    f"{prefix}mapping {mapping.name!r} -> {target_obj.name}: required field "
                    f"{target_field.name!r} is not mapped (map a source field or a constant to it)"
                )
    return problems


def _constant_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    return "string"


def _hint(value_type: str, target_type: str) -> str:
    if target_type in {"date", "datetime"}:
        return f" (add a {target_type!r} transform)"
    if target_type == "boolean":
        return " (add a 'boolean' transform)"
    return ""


def _check_value_map(name: str, args: Mapping[str, Any], target_field: Any) -> list[str]:
    if not target_field.restricted_picklist and target_field.type != "picklist":
        return []
    allowed = set(target_field.picklist_values)
    outputs = list((args.get("map") or {}).values())
    if "default" in args and args["default"] is not None:
        outputs.append(args["default"])
    bad = [str(v) for v in outputs if v is not None and str(v) not in allowed]
    if bad and allowed:
        return [
            f"{name}: value map produces {', '.join(map(repr, bad))}, not allowed by picklist "
            f"{target_field.name} (allowed: {', '.join(target_field.picklist_values)})"
        ]
    return []
