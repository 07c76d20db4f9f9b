"""The emulated org's data: records in memory, written in transactions, optionally persisted.

Every write goes through a :class:`Transaction`: field validation, derived fields of standard
objects (:mod:`.standard`), required fields, unique values and validation rules are checked
per record; a failed all-or-none batch is rolled back; listeners (outbound messages) hear
about the changes only after the transaction commits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
from eventsync.sandbox_env import write_private

from . import ids, soql, standard, validate
from .errors import SfError
from .metadata import ObjectDef


@attrs.frozen
class WriteContext:
    """Who writes and how: the acting user, and whether automation (workflow) may fire.

    ``source`` is ``api`` or ``import_wizard`` (the simulated Data Import Wizard).
    """

    user_id: str
    trigger_workflow: bool = True
    source: str = "api"


@attrs.frozen
class Change:
    """One committed change, as outbound-message rules see it."""

    op: str
    object: str
    record: Mapping[str, Any]
    before: Mapping[str, Any] | None
    context: WriteContext


@attrs.frozen
class ValidationRule:
    """A validation rule: when ``condition`` (a SOQL WHERE expression) holds, refuse the record."""

    object: str
    name: str
    condition: Any
    message: str
    field: str | None = None


Listener = Callable[[list[Change]], None]


class Transaction:
    """A unit of work; collects undo steps and the changes to announce on commit."""

    def __init__(self, store: Store, context: WriteContext) -> None:
        self.store = store
        self.context = context
        self.undo: list[Callable[[], None]] = []
        self.changes: list[Change] = []

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """Undo the writes of the block if it raises (one record's failure)."""
        undo_mark, change_mark = len(self.undo), len(self.changes)
        try:
            yield
        except Exception:
            self.rollback_to(undo_mark, change_mark)
            raise

    def rollback_to(self, undo_mark: int = 0, change_mark: int = 0) -> None:
        """Revert every write after the marks."""
        while len(self.undo) > undo_mark:
            self.undo.pop()()
        del self.changes[change_mark:]

    # --- writes -----------------------------------------------------------------------

    def create(self, object_name: str, values: Mapping[str, Any]) -> str:
        """Insert one record; returns its id or raises SfError."""
        store = self.store
        obj = store.object(object_name)
        if not obj.createable:
            raise SfError("INSUFFICIENT_ACCESS_OR_READONLY", f"cannot create {obj.name}", [])
        if "Id" in values or "id" in values:
            raise SfError(
                "INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"]
            )
        incoming = validate.check_writable(obj, values, creating=True)
        record: dict[str, Any] = {}
        for field in obj.fields:
            record[field.name] = field.default if field.defaulted_on_create else None
        record.update(incoming)
        now = store.now()
        record.update(
            {
                "Id": store.ids.new(obj.key_prefix),
                "IsDeleted": False,
                "CreatedDate": now,
                "LastModifiedDate": now,
                "SystemModstamp": now,
                "CreatedById": self.context.user_id,
                "LastModifiedById": self.context.user_id,
            }
        )
        if obj.field("OwnerId") is not None and not record.get("OwnerId"):
            record["OwnerId"] = self.context.user_id
        standard.before_write(store, obj, record, None)
        validate.check_required(obj, record)
        store.check_unique(obj, record)
        store.check_rules(obj, record)
        store.put(self, obj, record)
        self.changes.append(Change("create", obj.name, dict(record), None, self.context))
        standard.after_create(self, obj, record)
        return record["Id"]

    def update(self, object_name: str, record_id: str, values: Mapping[str, Any]) -> None:
        """Update one record by id, or raise SfError (NOT_FOUND, ENTITY_IS_DELETED ...)."""
        store = self.store
        obj = store.object(object_name)
        before = store.existing(obj, record_id)
        incoming = validate.check_writable(obj, values, creating=False)
        record = dict(before)
        record.update(incoming)
        now = store.now()
        record.update(
            {
                "LastModifiedDate": now,
                "SystemModstamp": now,
                "LastModifiedById": self.context.user_id,
            }
        )
        standard.before_write(store, obj, record, before)
        validate.check_required(obj, record)
        store.check_unique(obj, record)
        store.check_rules(obj, record)
        store.put(self, obj, record)
        self.changes.append(Change("update", obj.name, dict(record), dict(before), self.context))

    def upsert(
        self, object_name: str, field_name: str, value: Any, values: Mapping[str, Any]
    ) -> tuple[str, bool]:
        """Upsert on an external-id field; returns ``(id, created)``.

        SfError 404 for a field that is not an external id, 300 (DUPLICATE_EXTERNAL_ID, with
        ``matches``) when several records match.
        """
        store = self.store
        obj = store.object(object_name)
        field = obj.field(field_name)
        if field is None or not (field.external_id or field.id_lookup):
            raise SfError(
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field_name}",
                [],
                404,
            )
        if value in (None, ""):
            raise SfError("MISSING_ARGUMENT", f"{field.name} not specified", [field.name])
        values = {k: v for k, v in values.items() if k.lower() not in ("attributes", "id")}
        if field.name == "Id":
            self.update(obj.name, str(value), values)
            return str(value), False
        matches = store.match(obj, field.name, value)
        if len(matches) > 1:
            error = SfError(
                "DUPLICATE_EXTERNAL_ID",
                f"Foreign key external ID: {value} matched more than one record",
                [field.name],
                300,
            )
            error.matches = matches  # type: ignore[attr-defined]
            raise error
        if matches:
            self.update(obj.name, matches[0], values)
            return matches[0], False
        merged = dict(values)
        merged[field.name] = value
        return self.create(obj.name, merged), True

    def delete(self, object_name: str | None, record_id: str) -> str:
        """Soft-delete one record (it stays visible to queryAll); returns its object name."""
        store = self.store
        obj = store.object(object_name) if object_name else store.object_of(record_id)
        before = store.existing(obj, record_id)
        record = dict(before)
        record.update({"IsDeleted": True, "SystemModstamp": store.now()})
        store.put(self, obj, record)
        self.changes.append(Change("delete", obj.name, dict(record), dict(before), self.context))
        return obj.name

    def undelete(self, record_id: str) -> str:
        """Restore a deleted record from the recycle bin, with the same id; returns the id.

        As Apex's and SOAP's ``undelete()``: IsDeleted is false again, LastModifiedDate and
        SystemModstamp move to now, and the record must still fit its object's rules (a
        unique value or a campaign membership taken meanwhile fails with DUPLICATE_VALUE).
        SfError UNDELETE_FAILED for a record that is not deleted.
        """
        store = self.store
        if ids.normalise(record_id) is None:
            raise SfError("MALFORMED_ID", f"malformed id {record_id}", ["Id"])
        obj = store.object_of(record_id)
        before = store.find(obj, record_id)
        if before is None:
            raise SfError("NOT_FOUND", "The requested resource does not exist", [], 404)
        if not before.get("IsDeleted"):
            raise SfError("UNDELETE_FAILED", "Entity is not in recycle bin", [])
        record = dict(before)
        now = store.now()
        record.update(
            {
                "IsDeleted": False,
                "LastModifiedDate": now,
                "SystemModstamp": now,
                "LastModifiedById": self.context.user_id,
            }
        )
        # Checked as a new record: the live ones it must not duplicate exclude itself.
        standard.before_write(store, obj, record, None)
        store.check_unique(obj, record)
        store.put(self, obj, record)
        self.changes.append(Change("undelete", obj.name, dict(record), dict(before), self.context))
        return str(record["Id"])


class Store:
    """All records of the emulated org, guarded by one lock."""

    def __init__(
        self,
        objects: list[ObjectDef],
        rules: list[ValidationRule] | None = None,
        id_factory: ids.IdFactory | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.ids = id_factory or ids.IdFactory()
        self.objects: dict[str, ObjectDef] = {}
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.rules = list(rules or [])
        self.listeners: list[Listener] = []
        self._unique: dict[tuple[str, str], dict[str, str]] = {}
        self._last_now = ""
        for obj in objects:
            self.add_object(obj)

    # --- metadata ---------------------------------------------------------------------

    def add_object(self, obj: ObjectDef) -> None:
        """Register (or replace) an object definition."""
        with self.lock:
            self.objects[obj.name.lower()] = obj
            self.records.setdefault(obj.name, {})
            self._reindex(obj)

    def remove_field(self, object_name: str, field_name: str) -> None:
        """Delete a field from an object, as an admin would in Setup."""
        with self.lock:
            obj = self.object(object_name)
            field = obj.field(field_name)
            if field is None:
                raise SfError("NOT_FOUND", "The requested resource does not exist", [], 404)
            kept = tuple(f for f in obj.fields if f is not field)
            self.add_object(attrs.evolve(obj, fields=kept))
            for record in self.records[obj.name].values():
                record.pop(field.name, None)

    def object(self, name: str) -> ObjectDef:
        """The object called ``name`` or SfError NOT_FOUND."""
        found = self.objects.get(name.lower())
        if found is None:
            raise SfError("NOT_FOUND", "The requested resource does not exist", [], 404)
        return found

    def object_of(self, record_id: str) -> ObjectDef:
        """The object an id belongs to, by key prefix."""
        for obj in self.objects.values():
            if record_id.startswith(obj.key_prefix):
                return obj
        raise SfError("MALFORMED_ID", f"malformed id {record_id}", ["Id"])

    # --- reads ------------------------------------------------------------------------

    def now(self) -> str:
        """The current time in Salesforce's wire format (whole seconds, as SystemModstamp
        has), never earlier than the last one."""
        stamp = soql.format_datetime(dt.datetime.now(dt.UTC).replace(microsecond=0))
        with self.lock:
            self._last_now = max(self._last_now, stamp)
            return self._last_now

    def find(self, obj: ObjectDef, record_id: str) -> dict[str, Any] | None:
        """The stored record with this id (deleted or not), or None."""
        full = ids.normalise(record_id)
        if full is None:
            return None
        return self.records[obj.name].get(full)

    def existing(self, obj: ObjectDef, record_id: str) -> dict[str, Any]:
        """A live record, or SfError MALFORMED_ID / NOT_FOUND / ENTITY_IS_DELETED."""
        if ids.normalise(record_id) is None or not record_id.startswith(obj.key_prefix):
            raise SfError(
                "MALFORMED_ID", f"{obj.label} ID: id value of incorrect type: {record_id}", ["Id"]
            )
        record = self.find(obj, record_id)
        if record is None:
            raise SfError("NOT_FOUND", "The requested resource does not exist", [], 404)
        if record.get("IsDeleted"):
            raise SfError("ENTITY_IS_DELETED", "entity is deleted", [], 404)
        return record

    def get_any(self, record_id: str) -> dict[str, Any] | None:
        """The record with this id in any object."""
        try:
            return self.find(self.object_of(record_id), record_id)
        except SfError:
            return None

    def match(self, obj: ObjectDef, field_name: str, value: Any) -> list[str]:
        """Ids of live records whose ``field_name`` equals ``value`` (case-insensitively)."""
        field = obj.field(field_name)
        if field is None:
            return []
        wanted = str(value).lower()
        index = self._unique.get((obj.name, field.name))
        if index is not None:
            found = index.get(wanted)
            return [found] if found else []
        return [
            rid
            for rid, rec in self.records[obj.name].items()
            if not rec.get("IsDeleted")
            and rec.get(field.name) is not None
            and str(rec[field.name]).lower() == wanted
        ]

    # --- writes -----------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self, context: WriteContext) -> Iterator[Transaction]:
        """Run writes atomically; listeners hear of them only after commit."""
        with self.lock:
            tx = Transaction(self, context)
            try:
                yield tx
            except BaseException:
                tx.rollback_to()
                raise
            changes = list(tx.changes)
        if changes:
            for listener in list(self.listeners):
                listener(changes)

    def put(self, tx: Transaction, obj: ObjectDef, record: dict[str, Any]) -> None:
        """Store a record version and register how to undo it."""
        table = self.records[obj.name]
        previous = table.get(record["Id"])
        self._unindex(obj, previous)
        table[record["Id"]] = record
        self._index(obj, record)

        def undo() -> None:
            self._unindex(obj, table.get(record["Id"]))
            if previous is None:
                table.pop(record["Id"], None)
            else:
                table[record["Id"]] = previous
                self._index(obj, previous)

        tx.undo.append(undo)

    def check_unique(self, obj: ObjectDef, record: Mapping[str, Any]) -> None:
        """DUPLICATE_VALUE when a unique field's value is taken by another live record."""
        for field in obj.fields:
            if not field.unique or record.get(field.name) in (None, ""):
                continue
            other = self._unique[(obj.name, field.name)].get(str(record[field.name]).lower())
            if other and other != record["Id"]:
                raise SfError(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {field.name} duplicates value on record "
                    f"with id: {other}",
                    [field.name],
                )

    def check_rules(self, obj: ObjectDef, record: Mapping[str, Any]) -> None:
        """FIELD_CUSTOM_VALIDATION_EXCEPTION for the first validation rule that fires."""
        from .query import Resolver  # local: query imports store

        for rule in self.rules:
            if rule.object.lower() != obj.name.lower():
                continue
            if soql.evaluate(rule.condition, record, Resolver(self, obj)):
                raise SfError(
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    rule.message,
                    [rule.field] if rule.field else [],
                )

    def _reindex(self, obj: ObjectDef) -> None:
        for key in [k for k in self._unique if k[0] == obj.name]:
            del self._unique[key]
        for field in obj.fields:
            if field.unique:
                self._unique[(obj.name, field.name)] = {}
        for record in self.records.get(obj.name, {}).values():
            self._index(obj, record)

    def _index(self, obj: ObjectDef, record: Mapping[str, Any] | None) -> None:
        if record is None or record.get("IsDeleted"):
            return
        for (name, field_name), index in self._unique.items():
            if name == obj.name and record.get(field_name) not in (None, ""):
                index[str(record[field_name]).lower()] = record["Id"]

    def _unindex(self, obj: ObjectDef, record: Mapping[str, Any] | None) -> None:
        if record is None:
            return
        for (name, field_name), index in self._unique.items():
            value = record.get(field_name)
            if (
                name == obj.name
                and value not in (None, "")
                and index.get(str(value).lower()) == record["Id"]
            ):
                del index[str(value).lower()]

    # --- persistence ------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write every record to a JSON file, readable by its owner only (it holds the org's
        users and people's data)."""
        with self.lock:
            data = {"records": self.records, "next_id": self.ids.peek(), "last_now": self._last_now}
            write_private(path, json.dumps(data))

    def load(self, path: str | Path) -> bool:
        """Read records saved by :meth:`save`; False when the file does not exist."""
        file = Path(path)
        if not file.exists():
            return False
        data = json.loads(file.read_text(encoding="utf-8"))
        with self.lock:
            for name, table in data["records"].items():
                self.records[name] = table
            self.ids = ids.IdFactory(start=int(data.get("next_id", 1)))
            self._last_now = data.get("last_now", "")
            for obj in self.objects.values():
                self._reindex(obj)
        return True
