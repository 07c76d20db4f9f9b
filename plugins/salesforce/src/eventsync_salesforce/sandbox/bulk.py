"""Bulk API 2.0 ingest jobs (Salesforce's documentation).

A job is created Open, receives CSV with ``PUT .../batches`` (201), is processed when set to
UploadComplete, and reports JobComplete with per-row results as CSV: ``sf__Id, sf__Created``
plus the original columns for successes, ``sf__Id, sf__Error`` plus the columns for failures.
In the CSV an empty cell leaves a field unset and ``#N/A`` sets it to null.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Mapping
from typing import Any

from .errors import SfError
from .store import Store, WriteContext

TERMINAL = ("JobComplete", "Failed", "Aborted")


class BulkJobs:
    """Every ingest job of the org."""

    def __init__(self, store: Store, version: str = "59.0") -> None:
        self.store = store
        self.version = version
        self._jobs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def create(self, body: Mapping[str, Any], user_id: str) -> dict[str, Any]:
        """Open a job; SfError for a bad object or operation."""
        operation = body.get("operation")
        if operation not in ("insert", "update", "upsert", "delete", "hardDelete"):
            raise SfError("INVALIDJOB", f"Invalid operation: {operation}")
        obj = self.store.object(str(body.get("object", "")))
        external = body.get("externalIdFieldName")
        if operation == "upsert" and not external:
            raise SfError("INVALIDJOB", "External ID was blank for upsert")
        job_id = self.store.ids.new("750")
        job = {
            "id": job_id,
            "operation": operation,
            "object": obj.name,
            "createdById": user_id,
            "createdDate": self.store.now(),
            "systemModstamp": self.store.now(),
            "state": "Open",
            "externalIdFieldName": external,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.version),
            "contentUrl": f"services/data/v{self.version}/jobs/ingest/{job_id}/batches",
            "lineEnding": body.get("lineEnding", "LF"),
            "columnDelimiter": body.get("columnDelimiter", "COMMA"),
            "jobType": "V2Ingest",
            "numberRecordsProcessed": 0,
            "numberRecordsFailed": 0,
            "errorMessage": None,
            "_csv": [],
            "_ok": [],
            "_failed": [],
            "_header": [],
        }
        with self._lock:
            self._jobs[job_id] = job
        return public(job)

    def get(self, job_id: str) -> dict[str, Any]:
        """The job record; SfError NOT_FOUND when unknown."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise SfError("NOT_FOUND", "The requested resource does not exist", [], 404)
        return job

    def upload(self, job_id: str, text: str) -> None:
        """Add CSV data to an Open job."""
        job = self.get(job_id)
        if job["state"] != "Open":
            raise SfError("INVALIDJOBSTATE", f"Job is not open: {job['state']}", [], 409)
        job["_csv"].append(text)

    def set_state(self, job_id: str, state: str, user_id: str) -> dict[str, Any]:
        """Close (UploadComplete: process now) or abort a job."""
        job = self.get(job_id)
        if state == "Aborted":
            if job["state"] in TERMINAL:
                raise SfError("INVALIDJOBSTATE", "Job is already terminal", [], 409)
            job["state"] = "Aborted"
        elif state == "UploadComplete":
            if job["state"] != "Open":
                raise SfError("INVALIDJOBSTATE", f"Job is not open: {job['state']}", [], 409)
            job["state"] = "UploadComplete"
            self._process(job, user_id)
        else:
            raise SfError("INVALIDJOBSTATE", f"Invalid state: {state}", [], 400)
        return public(job)

    def delete(self, job_id: str) -> None:
        """Delete a terminal job."""
        job = self.get(job_id)
        with self._lock:
            self._jobs.pop(job["id"], None)

    def results(self, job_id: str, kind: str) -> str:
        """successfulResults, failedResults or unprocessedRecords as CSV."""
        job = self.get(job_id)
        header = job["_header"]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if kind == "successfulResults":
            writer.writerow(["sf__Id", "sf__Created", *header])
            writer.writerows(job["_ok"])
        elif kind == "failedResults":
            writer.writerow(["sf__Id", "sf__Error", *header])
            writer.writerows(job["_failed"])
        elif kind == "unprocessedRecords":
            writer.writerow(header)
            if job["state"] == "Aborted":
                for text in job["_csv"]:
                    writer.writerows(list(csv.reader(io.StringIO(text)))[1:])
        else:
            raise SfError("NOT_FOUND", "The requested resource does not exist", [], 404)
        return out.getvalue()

    def _process(self, job: dict[str, Any], user_id: str) -> None:
        job["state"] = "InProgress"
        rows: list[list[str]] = []
        header: list[str] = []
        for text in job["_csv"]:
            reader = list(csv.reader(io.StringIO(text)))
            if not reader:
                continue
            header = reader[0]
            rows.extend(reader[1:])
        job["_header"] = header
        operation = job["operation"]
        ctx = WriteContext(user_id)
        with self.store.transaction(ctx) as tx:
            for row in rows:
                values = {}
                for name, cell in zip(header, row, strict=False):
                    if cell == "":
                        continue
                    values[name] = None if cell == "#N/A" else cell
                try:
                    with tx.savepoint():
                        record_id, created = self._one(tx, job, operation, values)
                    job["_ok"].append([record_id, "true" if created else "false", *row])
                except SfError as exc:
                    fields = ",".join(exc.fields)
                    job["_failed"].append(
                        [values.get("Id", ""), f"{exc.code}:{exc.message}:{fields} --", *row]
                    )
        job["numberRecordsProcessed"] = len(rows)
        job["numberRecordsFailed"] = len(job["_failed"])
        job["state"] = "JobComplete"
        job["systemModstamp"] = self.store.now()

    def _one(
        self, tx: Any, job: Mapping[str, Any], operation: str, values: dict[str, Any]
    ) -> tuple[str, bool]:
        obj = job["object"]
        if operation == "insert":
            return tx.create(obj, values), True
        if operation == "update":
            record_id = values.pop("Id", None)
            if not record_id:
                raise SfError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            tx.update(obj, record_id, values)
            return record_id, False
        if operation == "upsert":
            field = job["externalIdFieldName"]
            return tx.upsert(obj, field, values.pop(field, None), values)
        record_id = values.get("Id", "")
        tx.delete(obj, record_id)
        return record_id, False


def public(job: Mapping[str, Any]) -> dict[str, Any]:
    """The job info as the API shows it (without internal keys)."""
    return {k: v for k, v in job.items() if not k.startswith("_")}
