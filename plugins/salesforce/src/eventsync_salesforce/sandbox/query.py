"""Running parsed SOQL against the store and shaping rows as the REST API returns them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import soql
from .errors import SfError
from .metadata import FieldDef, ObjectDef
from .store import Store


class Resolver:
    """Resolves field paths (``Campaign.Name``) on records of one object; checks they exist."""

    def __init__(self, store: Store, obj: ObjectDef, text: str = "") -> None:
        self.store = store
        self.obj = obj
        self.text = text
        self._chains: dict[soql.Path, list[tuple[ObjectDef, FieldDef]]] = {}

    def chain(self, path: soql.Path) -> list[tuple[ObjectDef, FieldDef]]:
        """The (object, field) steps of a path; SoqlError INVALID_FIELD when one is unknown."""
        found = self._chains.get(path)
        if found is not None:
            return found
        steps: list[tuple[ObjectDef, FieldDef]] = []
        obj = self.obj
        parts = list(path.parts)
        if len(parts) > 1 and parts[0].lower() == obj.name.lower():
            parts = parts[1:]
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            field = obj.field(part) if last else obj.relationship(part)
            if field is None:
                raise soql.invalid_field(self.text, path.text if len(parts) > 1 else part, obj.name)
            steps.append((obj, field))
            if not last:
                obj = self.store.object(field.reference_to[0])
        self._chains[path] = steps
        return steps

    def __call__(self, record: Mapping[str, Any], path: soql.Path) -> tuple[str, Any]:
        steps = self.chain(path)
        value: Any = record
        for _obj, field in steps[:-1]:
            target = value.get(field.name) if value else None
            value = self.store.get_any(target) if target else None
        last = steps[-1][1]
        return last.type, (value.get(last.name) if value else None)


def run(
    store: Store, text: str, include_deleted: bool, version: str = "59.0"
) -> tuple[list[dict[str, Any]], int]:
    """Execute a query; returns the shaped rows and totalSize (the count for COUNT())."""
    query = soql.parse(text)
    try:
        obj = store.object(query.object)
    except SfError:
        raise soql.SoqlError(
            "INVALID_TYPE",
            f"\n{text}\n{' ' * text.find(query.object)}^\nERROR at Row:1:Column:"
            f"{text.find(query.object) + 1}\nsObject type '{query.object}' is not supported. If "
            "you are attempting to use a custom object, be sure to append the '__c' after the "
            "entity name. Please reference your WSDL or the describe call for the appropriate "
            "names.",
        ) from None
    resolver = Resolver(store, obj, text)
    for path in query.fields:
        resolver.chain(path)
    for item in query.order:
        resolver.chain(item.path)
    _check_paths(query.where, resolver)
    with store.lock:
        rows = [
            record
            for record in _candidates(store.records[obj.name], query.where, resolver)
            if (include_deleted or not record.get("IsDeleted"))
            and soql.evaluate(query.where, record, resolver)
        ]
        if query.order:
            rows.sort(key=soql.sort_key(query.order, resolver))
        if query.offset:
            rows = rows[query.offset :]
        if query.limit is not None:
            rows = rows[: query.limit]
        if query.count:
            return [], len(rows)
        fields = query.fields or (soql.Path(("Id",)),)
        shaped = [shape(store, obj, record, fields, resolver, version) for record in rows]
    return shaped, len(shaped)


#: Field types compared as case-insensitive text (``soql.comparable``'s default).
_TEXT_TYPES = frozenset({"string", "email", "phone", "url", "textarea", "picklist", "combobox"})


def _candidates(records: Mapping[str, dict[str, Any]], where: Any, resolver: Resolver) -> Any:
    """The records that may match ``where``: for ``Field IN (...)`` or ``Field = '...'`` on a
    text field of the object itself (alone or in a top-level AND), those whose raw value is
    one of the values, found by a cheap look at each; otherwise every record. ``evaluate``
    still decides: this only spares the whole condition on records it cannot match (a match
    query of a 200-email batch against 100,000 Leads, under the store lock)."""
    conditions = where.items if isinstance(where, soql.BoolOp) and where.op == "and" else [where]
    for cond in conditions:
        wanted = _text_values(cond, resolver)
        if wanted is not None:
            name = resolver.chain(cond.path)[-1][1].name
            return [
                record
                for record in records.values()
                if isinstance(value := record.get(name), str) and value.lower() in wanted
            ]
    return records.values()


def _text_values(cond: Any, resolver: Resolver) -> frozenset[str] | None:
    """The lower-cased string values a positive IN or ``=`` on a text field of the object
    itself asks for, else None."""
    if isinstance(cond, soql.InList) and not cond.negate:
        literals = cond.values
    elif isinstance(cond, soql.Compare) and cond.op == "=":
        literals = (cond.value,)
    else:
        return None
    steps = resolver.chain(cond.path)
    if len(steps) != 1 or steps[0][1].type not in _TEXT_TYPES:
        return None
    if not literals or any(literal.kind != "string" for literal in literals):
        return None
    return frozenset(str(literal.value).lower() for literal in literals)


def _check_paths(cond: Any, resolver: Resolver) -> None:
    if cond is None:
        return
    if isinstance(cond, soql.BoolOp):
        for item in cond.items:
            _check_paths(item, resolver)
    else:
        resolver.chain(cond.path)


def attributes(obj: ObjectDef, record_id: str, version: str) -> dict[str, str]:
    """The ``attributes`` block of a record."""
    return {"type": obj.name, "url": f"/services/data/v{version}/sobjects/{obj.name}/{record_id}"}


def shape(
    store: Store,
    obj: ObjectDef,
    record: Mapping[str, Any],
    fields: tuple[soql.Path, ...],
    resolver: Resolver,
    version: str = "59.0",
) -> dict[str, Any]:
    """A query row: ``attributes``, the selected fields, parents as nested objects (or null)."""
    row: dict[str, Any] = {"attributes": attributes(obj, record["Id"], version)}
    for path in fields:
        steps = resolver.chain(path)
        target = row
        current: Mapping[str, Any] | None = record
        for _step_obj, field in steps[:-1]:
            name = field.relationship_name or field.name
            parent_id = current.get(field.name) if current else None
            parent = store.get_any(parent_id) if parent_id else None
            if parent is None:
                target[name] = None
                current = None
                break
            parent_obj = store.object(field.reference_to[0])
            nested = target.get(name)
            if not isinstance(nested, dict):
                nested = {"attributes": attributes(parent_obj, parent["Id"], version)}
                target[name] = nested
            target = nested
            current = parent
        else:
            field = steps[-1][1]
            target[field.name] = current.get(field.name) if current else None
    return row
