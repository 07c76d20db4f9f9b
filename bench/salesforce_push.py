"""Benchmark: 10,000 Leads upserted on Email through the salesforce plugin versus a
hand-written optimal simple-salesforce script making the same Composite calls.

Both sides run in one process against one local HTTPS sandbox, interleaved batch by batch so
both see the same org size. Each batch of 1,000 Leads (the plugin's ``max_batch``: five
Collections of 200) costs one Composite request of five SOQL ``IN`` queries (the match) and one
Composite request of up to five Collections writes (creates and updates). API calls are read
from the sandbox's counters. Runs with no latency, then with the sandbox's realistic profile,
and prints both.

Run:  .venv/bin/python bench/salesforce_push.py [--records 10000] [--latency both|none|realistic]
"""

from __future__ import annotations

import argparse
import time
from typing import Any
from urllib.parse import quote

import _latency
from eventsync.models import PushItem, PushRequest
from eventsync_salesforce import plugin
from eventsync_salesforce.transport import PinnedSession
from simple_salesforce import Salesforce

BATCH = 1000  # the plugin's max_batch: five Collections calls in one Composite
COLLECTION = 200


def leads(prefix: str, start: int, count: int) -> list[dict[str, Any]]:
    """``count`` distinct Leads."""
    return [
        {"LastName": f"{prefix}{i}", "Company": "Bench", "Email": f"{prefix}{i}@bench.example"}
        for i in range(start, start + count)
    ]


def _composite(sf: Salesforce, version: str, subrequests: list[tuple[str, str, Any]]) -> list:
    """One Composite request of ``(method, path, body)`` subrequests; their bodies."""
    body = {
        "allOrNone": False,
        "compositeRequest": [
            {"method": method, "url": f"/services/data/v{version}/{path}", "referenceId": f"r{n}"}
            | ({"body": data} if data is not None else {})
            for n, (method, path, data) in enumerate(subrequests)
        ],
    }
    answer = sf.restful("composite", method="POST", json=body)
    return [entry["body"] for entry in answer["compositeResponse"]]


def optimal_batch(sf: Salesforce, version: str, rows: list[dict[str, Any]]) -> None:
    """The best a hand-written script can do: one Composite of the five IN queries, one of the
    create and update Collections (200 records each)."""
    queries = []
    for start in range(0, len(rows), COLLECTION):
        emails = ", ".join(
            "'" + r["Email"].replace("\\", "\\\\").replace("'", "\\'") + "'"
            for r in rows[start : start + COLLECTION]
        )
        statement = f"SELECT Id, Email FROM Lead WHERE Email IN ({emails})"
        queries.append(("GET", f"query?q={quote(statement, safe='')}", None))
    found = {
        rec["Email"].lower(): rec["Id"]
        for answer in _composite(sf, version, queries)
        for rec in answer["records"]
    }
    creates = [
        {"attributes": {"type": "Lead"}, **r} for r in rows if r["Email"].lower() not in found
    ]
    updates = [
        {"attributes": {"type": "Lead"}, "id": found[r["Email"].lower()], **r}
        for r in rows
        if r["Email"].lower() in found
    ]
    writes = [
        (method, "composite/sobjects", {"allOrNone": False, "records": part[i : i + COLLECTION]})
        for method, part in (("PATCH", updates), ("POST", creates))
        for i in range(0, len(part), COLLECTION)
    ]
    for start in range(0, len(writes), 5):
        _composite(sf, version, writes[start : start + 5])


def per_record_batch(sf: Salesforce, rows: list[dict[str, Any]]) -> None:
    """The naive pattern: one lookup and one write per record."""
    for row in rows:
        email = row["Email"].replace("'", "\\'")
        found = sf.query(f"SELECT Id FROM Lead WHERE Email = '{email}'")["records"]
        if found:
            sf.Lead.update(found[0]["Id"], row)
        else:
            sf.Lead.create(row)


def main() -> None:
    """Run the benchmark once per latency profile and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    _latency.add_argument(parser)
    args = parser.parse_args()
    for profile in _latency.chosen(args):
        print(f"--- latency profile: {profile}")
        run(args.records, profile)


def run(records: int, profile: str) -> None:
    """Both sides against one sandbox answering with the latency ``profile``."""
    options = {"daily_api_limit": 10_000_000, "latency": _latency.option(profile)}
    sandbox = plugin.start_sandbox("salesforce", options)
    try:
        settings = sandbox.settings("bench")
        conn = plugin.authenticate("salesforce", settings)
        info = sandbox.info()
        http = PinnedSession(verify=sandbox.ca_bundle)
        token = http.post(
            info["token_url"],
            data={
                "grant_type": "password",
                "client_id": info["client_id"],
                "client_secret": info["client_secret"],
                "username": info["username"],
                "password": info["password"],
            },
        ).json()
        sf = Salesforce(
            instance_url=token["instance_url"],
            session_id=token["access_token"],
            session=http,
            version=info["api_version"],
        )
        # A running engine has Lead described already (its schema cache lasts an hour).
        conn.schema.object(conn, "Lead")
        counters = sandbox.org.counters
        seconds = {"plugin": 0.0, "optimal": 0.0}
        calls = {"plugin": 0, "optimal": 0}
        failures = 0
        for number, start in enumerate(range(0, records, BATCH)):
            count = min(BATCH, records - start)
            order = ["plugin", "optimal"] if number % 2 == 0 else ["optimal", "plugin"]
            for side in order:
                rows = leads("p" if side == "plugin" else "o", start, count)
                used = counters.used
                began = time.perf_counter()
                if side == "plugin":
                    request = PushRequest(
                        "Lead",
                        "upsert",
                        tuple(PushItem(row["Email"], row) for row in rows),
                        match_key="Email",
                    )
                    failures += sum(not r.ok for r in plugin.push(conn, request))
                else:
                    optimal_batch(sf, info["api_version"], rows)
                seconds[side] += time.perf_counter() - began
                calls[side] += counters.used - used
        sample = 200
        used = counters.used
        per_record_batch(sf, leads("n", 0, sample))
        naive = (counters.used - used) * 1000 / sample
        per_k = {side: calls[side] * 1000 / records for side in calls}
        print(f"records: {records} Leads per side, upsert on Email, batches of {BATCH}")
        print(
            f"plugin : {calls['plugin']} API calls = {per_k['plugin']:.1f} per 1,000 records "
            f"(match queries included), {seconds['plugin']:.2f} s, {failures} failed records"
        )
        print(
            f"optimal: {calls['optimal']} API calls = {per_k['optimal']:.1f} per 1,000 records, "
            f"{seconds['optimal']:.2f} s"
        )
        print(f"per-record pattern (measured on {sample}): {naive:.0f} API calls per 1,000 records")
        print(f"time ratio plugin/optimal: {seconds['plugin'] / seconds['optimal']:.2f}")
        print(f"calls ratio plugin/optimal: {calls['plugin'] / calls['optimal']:.2f}")
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
