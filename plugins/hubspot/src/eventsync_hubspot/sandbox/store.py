"""The sandbox's records: objects, validation as HubSpot does it, batch writes and search.

Every value is kept as HubSpot returns it, a string (numbers and booleans included; emails
lower-cased). Every record written by one call gets the same ``updatedAt`` /
``hs_lastmodifieddate`` (milliseconds, strictly later than any earlier call's), so a batch
makes timestamp ties. A batch with one invalid input is refused whole (400
``VALIDATION_ERROR``, or 409 ``CONFLICT`` for a contact email that exists), as HubSpot does;
ids that do not exist are a 207 answer's ``errors`` (``OBJECT_NOT_FOUND``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .properties import contact_properties, from_option, system_properties

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_INPUTS = 100
MAX_LIMIT = 200
MAX_GROUPS = 5
MAX_FILTERS = 25
#: The properties a search or read returns when it names none, per object.
DEFAULT_PROPERTIES = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname")
}
#: One write's change to one record: (action, the record, its properties before, if updated).
Change = tuple[str, dict[str, Any], dict[str, Any] | None]


class ApiError(Exception):
    """A refusal of a whole call: status, category, message and more body fields."""

    def __init__(self, status: int, category: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.category, self.message, self.extra = status, category, message, extra

    def body(self) -> dict[str, Any]:
        """HubSpot's error body."""
        return {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
            **self.extra,
        }


def iso(ms: int) -> str:
    """Milliseconds since the epoch as HubSpot's ISO 8601 (``...123Z``)."""
    stamp = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def to_ms(value: Any) -> int | None:
    """A datetime filter or property value (epoch ms or ISO 8601) as epoch milliseconds."""
    if value in (None, ""):
        return None
    text = str(value)
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


class ObjectType:
    """One object: its name, type id, property definitions and records."""

    def __init__(self, name: str, type_id: str, props: list[dict[str, Any]], label: str) -> None:
        self.name, self.type_id, self.label = name, type_id, label
        self.props = {p["name"]: p for p in props}
        self.records: dict[str, dict[str, Any]] = {}
        #: property -> lower-cased value -> record id, for the unique ones (found in O(1)).
        self.index: dict[str, dict[str, str]] = {}

    def unique(self, name: str) -> bool:
        """Whether ``name`` holds unique values (a contact's email, or ``hasUniqueValue``)."""
        spec = self.props.get(name)
        return spec is not None and (
            bool(spec["hasUniqueValue"]) or (name == "email" and self.name == "contacts")
        )

    def reindex(self, record: dict[str, Any], before: dict[str, Any] | None) -> None:
        """Keep the unique-value index in step with one record's change (None: removed)."""
        for name in [n for n in self.props if self.unique(n)]:
            values = self.index.setdefault(name, {})
            old = (before or {}).get(name)
            if old is not None and values.get(old.lower()) == record["id"]:
                del values[old.lower()]
            new = record["properties"].get(name) if record["id"] in self.records else None
            if new is not None:
                values[new.lower()] = record["id"]

    def singular(self) -> str:
        """``CONTACT``, as HubSpot's messages name it."""
        return self.label.upper()


class Store:
    """Every object's records, their ids and the write clock (thread-safe)."""

    def __init__(
        self,
        extra_properties: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        custom_objects: Sequence[Mapping[str, Any]] = (),
        search_cap: int = 10_000,
    ) -> None:
        self.lock = threading.RLock()
        self.search_cap = search_cap
        self.types: dict[str, ObjectType] = {
            "contacts": ObjectType("contacts", "0-1", contact_properties(), "Contact")
        }
        for spec in custom_objects:
            props = [from_option(p) for p in spec.get("properties", ())]
            props += system_properties()
            name = str(spec["name"])
            label = str(spec.get("label") or name)
            self.types[name] = ObjectType(name, str(spec["objectTypeId"]), props, label)
        for obj, extra in (extra_properties or {}).items():
            target = self.object(obj)
            for prop in extra:
                target.props[str(prop["name"])] = from_option(prop)
        self._ids = itertools.count(1001)
        self._last_ms = 0
        self.listeners: list[Callable[[ObjectType, list[Change]], None]] = []

    # --- objects --------------------------------------------------------------------------

    def object(self, name: str) -> ObjectType:
        """The object a path names (name or objectTypeId); 400 for an unknown one."""
        for candidate in self.types.values():
            if name in (candidate.name, candidate.type_id):
                return candidate
        raise ApiError(400, "OBJECT_NOT_FOUND", f"Unable to infer object type from: {name}")

    def _stamp(self) -> int:
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        return self._last_ms

    # --- reading --------------------------------------------------------------------------

    def row(
        self, obj: ObjectType, record: dict[str, Any], wanted: Sequence[str] | None
    ) -> dict[str, Any]:
        """One record as the API shows it, with ``wanted`` properties (default: the
        object's default ones)."""
        names = (
            list(wanted)
            if wanted
            else list(
                DEFAULT_PROPERTIES.get(
                    obj.name, ("hs_object_id", "hs_lastmodifieddate", "createdate")
                )
            )
        )
        values = record["properties"]
        return {
            "id": record["id"],
            "properties": {n: values.get(n) for n in names if n in obj.props},
            "createdAt": iso(record["created"]),
            "updatedAt": iso(record["updated"]),
            "archived": False,
        }

    def read(
        self,
        name: str,
        ids: Sequence[str],
        wanted: Sequence[str] | None,
        id_property: str | None = None,
    ) -> tuple[list[Any], list[str]]:
        """The records with these ids (or ``id_property`` values): (rows, missing ids)."""
        with self.lock:
            obj = self.object(name)
            rows, missing = [], []
            for given in ids:
                record = (
                    self._find(obj, id_property, str(given))
                    if id_property
                    else obj.records.get(str(given))
                )
                if record is None:
                    missing.append(str(given))
                else:
                    rows.append(self.row(obj, record, wanted))
            return rows, missing

    def _find(self, obj: ObjectType, prop: str, value: str) -> dict[str, Any] | None:
        wanted = value.lower()
        if obj.unique(prop):
            found = obj.index.get(prop, {}).get(wanted)
            return obj.records.get(found) if found else None
        for record in obj.records.values():
            current = record["properties"].get(prop)
            if current is not None and current.lower() == wanted:
                return record
        return None

    # --- validation -----------------------------------------------------------------------

    def _problems(self, obj: ObjectType, properties: Mapping[str, Any]) -> list[dict[str, Any]]:
        problems = []
        for name, value in properties.items():
            spec = obj.props.get(name)
            if spec is None:
                problems.append(
                    _invalid(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            if spec["modificationMetadata"]["readOnlyValue"]:
                problems.append(
                    _invalid(
                        name,
                        "READ_ONLY_VALUE",
                        f'"{name}" is a read only property; its value cannot be set.',
                    )
                )
                continue
            if value is None or value == "":
                continue
            text = _text(value)
            kind = spec["type"]
            if name == "email" and not EMAIL.match(text):
                problems.append(_invalid(name, "INVALID_EMAIL", f"Email address {text} is invalid"))
            elif kind == "number":
                try:
                    float(text)
                except ValueError:
                    problems.append(
                        _invalid(name, "INVALID_INTEGER", f"{text} was not a valid number.")
                    )
            elif kind in ("datetime", "date") and to_ms(text) is None:
                problems.append(
                    _invalid(name, "INVALID_DATE", f"{text} was not a valid long or ISO 8601 date.")
                )
            elif kind == "enumeration":
                allowed = [o["value"] for o in spec["options"]]
                chosen = text.split(";") if spec["fieldType"] == "checkbox" else [text]
                bad = [c for c in chosen if c not in allowed]
                if bad:
                    problems.append(
                        _invalid(
                            name,
                            "INVALID_OPTION",
                            f"{bad[0]} was not one of the allowed options: {', '.join(allowed)}",
                        )
                    )
            elif kind == "bool" and text not in ("true", "false"):
                problems.append(
                    _invalid(name, "INVALID_BOOLEAN", f"{text} was not a valid boolean.")
                )
        return problems

    def _check_batch(self, obj: ObjectType, inputs: Sequence[Mapping[str, Any]]) -> None:
        """Refuse the whole batch for any invalid input, as HubSpot does."""
        if len(inputs) > MAX_INPUTS:
            raise ApiError(
                400, "VALIDATION_ERROR", f"Batch input limit is {MAX_INPUTS}; got {len(inputs)}"
            )
        problems = []
        for given in inputs:
            properties = given.get("properties")
            if not isinstance(properties, Mapping):
                raise ApiError(
                    400,
                    "VALIDATION_ERROR",
                    "Invalid input JSON: every input needs a 'properties' object",
                )
            problems += self._problems(obj, properties)
        if problems:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"Property values were not valid: {json.dumps(problems)}",
                errors=[
                    {"message": p["message"], "code": p["error"], "in": p["name"]} for p in problems
                ],
            )

    def _conflict(
        self, obj: ObjectType, properties: Mapping[str, Any], own: str | None
    ) -> ApiError | None:
        for name in obj.props:
            if not obj.unique(name):
                continue
            value = properties.get(name)
            if value in (None, ""):
                continue
            other = self._find(obj, name, _text(value))
            if other is not None and other["id"] != own:
                if name == "email":
                    return ApiError(
                        409, "CONFLICT", f"{obj.label} already exists. Existing ID: {other['id']}"
                    )
                return ApiError(
                    409,
                    "CONFLICT",
                    f"A {obj.label} with {name} {_text(value)!r} already exists. Existing ID: {other['id']}",
                )
        return None

    # --- writing --------------------------------------------------------------------------

    def _values(self, obj: ObjectType, properties: Mapping[str, Any]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for name, value in properties.items():
            text = None if value is None or value == "" else _text(value)
            if text is not None and name == "email":
                text = text.lower()
            if text is not None and obj.props[name]["type"] == "datetime":
                text = iso(to_ms(text) or 0)
            out[name] = text
        return out

    def _create(self, obj: ObjectType, properties: Mapping[str, Any], stamp: int) -> dict[str, Any]:
        record_id = str(next(self._ids))
        values: dict[str, str | None] = dict.fromkeys(obj.props)
        values.update(self._values(obj, properties))
        values.update(
            hs_object_id=record_id,
            createdate=iso(stamp),
            lastmodifieddate=iso(stamp),
            hs_lastmodifieddate=iso(stamp),
        )
        record = {"id": record_id, "properties": values, "created": stamp, "updated": stamp}
        obj.records[record_id] = record
        obj.reindex(record, None)
        return record

    def _update(
        self, obj: ObjectType, record: dict[str, Any], properties: Mapping[str, Any], stamp: int
    ) -> dict[str, Any]:
        before = dict(record["properties"])
        record["properties"].update(self._values(obj, properties))
        record["properties"].update(lastmodifieddate=iso(stamp), hs_lastmodifieddate=iso(stamp))
        record["updated"] = stamp
        obj.reindex(record, before)
        return before

    def _emit(self, obj: ObjectType, changes: list[Change]) -> None:
        for listener in self.listeners:
            listener(obj, changes)

    def create(self, name: str, inputs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``batch/create``: every input or none."""
        with self.lock:
            obj = self.object(name)
            self._check_batch(obj, inputs)
            for given in inputs:
                conflict = self._conflict(obj, given["properties"], None)
                if conflict:
                    raise conflict
            seen: set[str] = set()
            for given in inputs:  # two inputs of the batch with one unique value
                email = given["properties"].get("email")
                if obj.name == "contacts" and email:
                    if _text(email).lower() in seen:
                        raise ApiError(
                            409,
                            "CONFLICT",
                            f"{obj.label} already exists. Existing ID: (this batch)",
                        )
                    seen.add(_text(email).lower())
            stamp = self._stamp()
            results: list[dict[str, Any]] = []
            changes: list[Change] = []
            for given in inputs:
                record = self._create(obj, given["properties"], stamp)
                results.append(self._written(obj, record, given, created=None))
                changes.append(("creation", record, None))
            self._emit(obj, changes)
            return results

    def update(self, name: str, inputs: Sequence[Mapping[str, Any]]) -> tuple[list[Any], list[str]]:
        """``batch/update`` by id (or ``idProperty``): (results, ids not found)."""
        with self.lock:
            obj = self.object(name)
            self._check_batch(obj, inputs)
            ids = [str(i.get("id")) for i in inputs]
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                raise ApiError(
                    400,
                    "VALIDATION_ERROR",
                    f"Duplicate IDs found in batch input: {twice}. IDs must be unique",
                )
            found, missing = [], []
            for given in inputs:
                prop = given.get("idProperty")
                record = (
                    self._find(obj, str(prop), str(given.get("id")))
                    if prop
                    else obj.records.get(str(given.get("id")))
                )
                (found.append((given, record)) if record else missing.append(str(given.get("id"))))
            for given, record in found:
                conflict = self._conflict(obj, given["properties"], record["id"])
                if conflict:
                    raise conflict
            stamp = self._stamp()
            results: list[dict[str, Any]] = []
            changes: list[Change] = []
            for given, record in found:
                before = self._update(obj, record, given["properties"], stamp)
                results.append(self._written(obj, record, given, created=None))
                changes.append(("propertyChange", record, before))
            self._emit(obj, changes)
            return results, missing

    def upsert(self, name: str, inputs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``batch/upsert`` on each input's unique ``idProperty``: update or create."""
        with self.lock:
            obj = self.object(name)
            self._check_batch(obj, inputs)
            for given in inputs:
                prop = given.get("idProperty")
                spec = obj.props.get(str(prop))
                unique = spec is not None and (
                    spec["hasUniqueValue"] or (prop == "email" and obj.name == "contacts")
                )
                if not unique:
                    raise ApiError(
                        400,
                        "VALIDATION_ERROR",
                        f"{prop} is not a unique property of {obj.name}; upserts need one as idProperty",
                    )
                if given.get("id") in (None, ""):
                    raise ApiError(
                        400,
                        "VALIDATION_ERROR",
                        "every upsert input needs an id (the idProperty value)",
                    )
            for given in inputs:
                own = self._find(obj, str(given["idProperty"]), str(given["id"]))
                conflict = self._conflict(obj, given["properties"], own["id"] if own else None)
                if conflict:
                    raise conflict
            values = [str(i["id"]).lower() for i in inputs]
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                raise ApiError(
                    400,
                    "VALIDATION_ERROR",
                    f"Duplicate IDs found in batch input: {twice}. IDs must be unique",
                )
            stamp = self._stamp()
            results: list[dict[str, Any]] = []
            changes: list[Change] = []
            for given in inputs:
                prop, value = str(given["idProperty"]), str(given["id"])
                record = self._find(obj, prop, value)
                if record is None:
                    record = self._create(obj, {**given["properties"], prop: value}, stamp)
                    changes.append(("creation", record, None))
                    results.append(self._written(obj, record, given, created=True))
                else:
                    before = self._update(obj, record, given["properties"], stamp)
                    changes.append(("propertyChange", record, before))
                    results.append(self._written(obj, record, given, created=False))
            self._emit(obj, changes)
            return results

    def archive(self, name: str, record_id: str) -> bool:
        """Archive (delete) one record; False when there is none."""
        with self.lock:
            obj = self.object(name)
            record = obj.records.pop(str(record_id), None)
            if record is not None:
                obj.reindex(record, record["properties"])
                self._emit(obj, [("deletion", record, None)])
            return record is not None

    def _written(
        self,
        obj: ObjectType,
        record: dict[str, Any],
        given: Mapping[str, Any],
        *,
        created: bool | None,
    ) -> dict[str, Any]:
        row = self.row(obj, record, list(given.get("properties") or ()) or None)
        if created is not None:
            row["new"] = created
        if given.get("objectWriteTraceId") is not None:
            row["objectWriteTraceId"] = given["objectWriteTraceId"]
        return row

    # --- search ---------------------------------------------------------------------------

    def search(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """One page of a search: filter groups ORed, filters ANDed, one sort, offset paging,
        at most ``search_cap`` results reachable."""
        limit = int(body.get("limit") or 10)
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(400, "VALIDATION_ERROR", f"limit must be between 1 and {MAX_LIMIT}")
        after = int(body.get("after") or 0)
        if after + limit > self.search_cap:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"The search API can return at most {self.search_cap} results for a query (after {after} + limit {limit}); narrow the query instead",
            )
        groups = list(body.get("filterGroups") or [])
        if (
            len(groups) > MAX_GROUPS
            or sum(len(g.get("filters") or []) for g in groups) > MAX_FILTERS
        ):
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"at most {MAX_GROUPS} filterGroups and {MAX_FILTERS} filters",
            )
        sorts = list(body.get("sorts") or [])
        if len(sorts) > 1:
            raise ApiError(400, "VALIDATION_ERROR", "only one sort is allowed")
        with self.lock:
            obj = self.object(name)
            tests = [[_matcher(obj, f) for f in g.get("filters") or []] for g in groups]
            found = [
                r
                for r in obj.records.values()
                if not tests or any(all(t(r) for t in g) for g in tests)
            ]
            found.sort(key=lambda r: int(r["id"]))
            if sorts:
                prop = str(sorts[0].get("propertyName"))
                if prop not in obj.props:
                    raise ApiError(
                        400, "VALIDATION_ERROR", f"cannot sort by unknown property {prop}"
                    )
                key = _sort_key(obj, prop)
                found.sort(key=key, reverse=sorts[0].get("direction", "ASCENDING") == "DESCENDING")
            page = found[after : after + limit]
            answer: dict[str, Any] = {
                "total": len(found),
                "results": [self.row(obj, r, body.get("properties") or None) for r in page],
            }
            if after + limit < len(found):
                answer["paging"] = {"next": {"after": str(after + limit), "link": ""}}
            return answer


def _invalid(name: str, error: str, message: str) -> dict[str, Any]:
    return {"isValid": False, "message": message, "error": error, "name": name}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _sort_key(obj: ObjectType, prop: str) -> Callable[[dict[str, Any]], Any]:
    kind = obj.props[prop]["type"]

    def key(record: dict[str, Any]) -> Any:
        value = record["properties"].get(prop)
        if kind in ("datetime", "date"):
            return (value is None, to_ms(value) or 0)
        if kind == "number":
            return (value is None, float(value) if value else 0.0)
        return (value is None, (value or "").lower())

    return key


def _matcher(obj: ObjectType, spec: Mapping[str, Any]) -> Callable[[dict[str, Any]], bool]:
    name, op = str(spec.get("propertyName")), str(spec.get("operator"))
    if name not in obj.props:
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            f"There was a problem with the request: {name} is not a property of {obj.name}",
        )
    kind = obj.props[name]["type"]

    def norm(value: Any) -> Any:
        if value in (None, ""):
            return None
        if kind in ("datetime", "date"):
            return to_ms(value)
        if kind == "number":
            try:
                return float(value)
            except ValueError:
                raise ApiError(
                    400, "VALIDATION_ERROR", f"{value} is not a number ({name})"
                ) from None
        return _text(value).lower()  # string comparisons ignore case

    def current(record: dict[str, Any]) -> Any:
        return norm(record["properties"].get(name))

    if op == "HAS_PROPERTY":
        return lambda r: current(r) is not None
    if op == "NOT_HAS_PROPERTY":
        return lambda r: current(r) is None
    if op in ("IN", "NOT_IN"):
        wanted = {norm(v) for v in spec.get("values") or []}
        if op == "IN":
            return lambda r: current(r) in wanted
        return lambda r: current(r) not in wanted
    if op == "BETWEEN":
        low, high = norm(spec.get("value")), norm(spec.get("highValue"))
        return lambda r: (v := current(r)) is not None and low <= v <= high
    if op == "CONTAINS_TOKEN":
        token = str(spec.get("value", "")).lower().strip("*")
        return lambda r: token in (r["properties"].get(name) or "").lower()
    value = norm(spec.get("value"))
    compare: dict[str, Callable[[Any], bool]] = {
        "EQ": lambda v: v == value,
        "NEQ": lambda v: v != value,
        "LT": lambda v: v is not None and v < value,
        "LTE": lambda v: v is not None and v <= value,
        "GT": lambda v: v is not None and v > value,
        "GTE": lambda v: v is not None and v >= value,
    }
    if op not in compare:
        raise ApiError(400, "VALIDATION_ERROR", f"Unknown operator {op}")
    test = compare[op]
    return lambda r: test(current(r))
