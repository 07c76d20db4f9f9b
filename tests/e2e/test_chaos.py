"""The standing chaos test of issue 10: exactly once, whatever happens.

A few hundred changes travel in both directions while everything that can go wrong does:

* Hopin registrations become Leads (some share an email, some change again), Salesforce
  CampaignMembers become magic links whose URLs are written back;
* about a quarter of the API calls that sync them fail, on both sandboxes: 503, 429 and
  ``UNABLE_TO_LOCK_ROW`` before the write, and answers lost after the write took effect;
* the engine process (a real ``eventsync run`` with a config file) is SIGKILLed three times,
  each time while it holds leases, and restarted;
* every notification passes through a relay that captures it; captured bodies are posted
  again to the engine, shuffled, and the Salesforce sandbox sends each Outbound Message twice
  and newest first, while the Hopin sandbox loses some deliveries outright;
* a second engine, in this process, shares the state store with a process clock five minutes
  ahead (as in ``core/tests/store/test_clocks.py``).

Then the faults stop, everything drains (pollers catch what the lost deliveries missed), and
the remote systems must hold every registration exactly once (one Lead per distinct email, with
the latest name), one magic link per CampaignMember with its URL written back, and no dead
letter. The summary line (``CHAOS[...]``) gives the figures; the terminal summary repeats it.

Set ``EVENTSYNC_CHAOS_SEED`` to replay a run's data and fault draws (thread timing still varies).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
import types
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import pytest
import requests
import sqlalchemy as sa
from eventsync import executor as executor_module
from eventsync.engine import Engine
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import (
    SandboxPair,
    free_port,
    sandbox_config_files,
    start_sandboxes,
    write_private,
)
from eventsync.store import StateStore
from eventsync_salesforce.sandbox.wiring import LINK_FIELD, TICKET_CODE_FIELD

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

EVENTSYNC = str(Path(sys.executable).with_name("eventsync"))
PG_URL = os.environ.get(
    "EVENTSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ORG = "chaos"
#: How far the in-process engine's process clock is ahead of the real one.
SKEW = 300.0
ROUNDS = 4
REGISTRATIONS = 150
MEMBERS = 100
UPDATES_PER_ROUND = 8
KILLS = 3
#: Every so many registrations, one reuses an earlier registration's email (upper-cased).
TWIN_EVERY = 6
REG_DOMAIN = "reg.example"
CRM_DOMAIN = "crm.example"
DRAIN_TIMEOUT = 240.0

#: Salesforce faults on record writes (sObject Collections, POST and PATCH) and on queries.
#: Each is drawn in turn: together they hit about a quarter of the calls of each kind.
SF_FAULTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("503 before", {"endpoint": "collections", "status": 503, "probability": 0.08}),
    ("429 before", {"endpoint": "collections", "status": 429, "probability": 0.06}),
    (
        "UNABLE_TO_LOCK_ROW",
        {
            "endpoint": "collections",
            "status": 200,
            "error_code": "UNABLE_TO_LOCK_ROW",
            "per_record": True,
            "probability": 0.08,
        },
    ),
    (
        "answer lost",
        {"endpoint": "collections", "status": 503, "when": "after", "probability": 0.10},
    ),
    ("503 before", {"endpoint": "query", "status": 503, "probability": 0.20}),
    ("429 before", {"endpoint": "query", "status": 429, "probability": 0.10}),
)
#: Hopin faults: magic-link creates (before and after the write) and every read the flows make.
HOPIN_FAULTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("429 before", {"path": "/v1/tickets/*/magicLinks", "method": "POST", "status": 429,
                    "retry_after": 1, "probability": 0.10}),
    ("503 before", {"path": "/v1/tickets/*/magicLinks", "method": "POST", "status": 503,
                    "probability": 0.10}),
    ("answer lost", {"path": "/v1/tickets/*/magicLinks", "method": "POST", "status": 503,
                     "when": "after", "probability": 0.12}),
    ("503 before", {"path": "/v1/tickets/*/magicLinks", "method": "GET", "status": 503,
                    "probability": 0.20}),
    ("429 before", {"path": "/v1/tickets/*/magicLinks", "method": "GET", "status": 429,
                    "probability": 0.10}),
    ("503 before", {"path": "/v1/magicLinks/*", "method": "GET", "status": 503,
                    "probability": 0.20}),
    ("429 before", {"path": "/v1/magicLinks/*", "method": "GET", "status": 429,
                    "probability": 0.10}),
    ("503 before", {"path": "/v1/registrations/*", "method": "GET", "status": 503,
                    "probability": 0.20}),
    ("429 before", {"path": "/v1/registrations/*", "method": "GET", "status": 429,
                    "probability": 0.10}),
    ("429 before", {"path": "/v1/events/*/registrations", "method": "GET", "status": 429,
                    "probability": 0.25}),
)  # fmt: skip


def wait_for(what: str, probe: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """``probe()`` once it is truthy; AssertionError naming ``what`` (and the last value, when
    ``probe`` returns ``(ok, detail)``) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        ok = value[0] if isinstance(value, tuple) else value
        if ok:
            return value
        if time.monotonic() > deadline:
            detail = value[1] if isinstance(value, tuple) else value
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}: {detail}")
        time.sleep(interval)


def within(timeout: float, probe: Callable[[], bool], interval: float = 0.05) -> bool:
    """True as soon as ``probe()`` is, False when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


# --- the state store -----------------------------------------------------------------------


@attrs.frozen
class StoreTarget:
    """Where both engines keep their state: ``state`` is the config's ``[engine] state``."""

    backend: str
    state: str

    def open(self) -> StateStore:
        """Another store on the same place (for reading it)."""
        if "://" in self.state:
            return StateStore.open(self.state)
        return StateStore.open(path=self.state)


@pytest.fixture(params=["sqlite", "postgres"])
def chaos_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreTarget]:
    """A SQLite file, or a PostgreSQL database of its own (the engine process is configured by
    URL only, so it gets a database rather than a schema), dropped afterwards."""
    if request.param == "sqlite":
        yield StoreTarget("sqlite", str(tmp_path / "state.sqlite3"))
        return
    name = f"chaos_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(PG_URL).set(database=name)
    try:
        yield StoreTarget("postgresql", url.render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


# --- a process clock minutes ahead, for the in-process engine ------------------------------


class _AheadDatetime(dt.datetime):
    """``datetime`` whose ``now`` is ``SKEW`` seconds ahead."""

    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
        return dt.datetime.now(tz) + dt.timedelta(seconds=SKEW)


@pytest.fixture
def clock_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every process-clock source of the store and the executor in this process, ``SKEW``
    seconds ahead: only the in-process engine uses them here (the engine process is not
    touched). The store must keep to the database's clock."""
    shim = types.SimpleNamespace(**{**vars(dt), "datetime": _AheadDatetime})
    for name, module in list(sys.modules.items()):
        if name.startswith("eventsync.store") and getattr(module, "dt", None) is dt:
            monkeypatch.setattr(module, "dt", shim)
    real = time.time
    monkeypatch.setattr(
        executor_module,
        "time",
        types.SimpleNamespace(
            time=lambda: real() + SKEW, monotonic=time.monotonic, sleep=time.sleep
        ),
    )


# --- the relay: every notification passes here and is captured ------------------------------


@attrs.frozen
class Captured:
    """A notification as a sandbox sent it."""

    path: str
    headers: Mapping[str, str]
    body: bytes


class Relay:
    """An HTTP relay between the sandboxes and the engine process: forwards each POST to the
    engine (502 while it is down, so the sandboxes send again) and keeps what it forwarded."""

    _SKIP = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.captured: list[Captured] = []
        self.seen: Counter[bytes] = Counter()
        self.lock = threading.Lock()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in relay._SKIP}
                status, content, kind = relay.forward(self.path, headers, body)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def forward(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, str]:
        """Send one notification on to the engine; its answer, or 502."""
        with self.lock:
            self.seen[body] += 1
            if self.seen[body] == 1:
                self.captured.append(Captured(path, headers, body))
        try:
            answer = requests.post(f"{self.upstream}{path}", data=body, headers=headers, timeout=15)
        except requests.RequestException as exc:
            return 502, f"engine unreachable: {type(exc).__name__}\n".encode(), "text/plain"
        return answer.status_code, answer.content, answer.headers.get("Content-Type", "")

    def resent_by_senders(self) -> int:
        """Bodies the sandboxes sent more than once (their retries and duplicate mode)."""
        with self.lock:
            return sum(n - 1 for n in self.seen.values())

    def replay(self, rng: random.Random, count: int | None = None) -> int:
        """Post ``count`` captured notifications (all when None) again, straight to the
        engine, in shuffled order; how many it answered with a 2xx."""
        with self.lock:
            chosen = list(self.captured)
        rng.shuffle(chosen)
        answered = 0
        for note in chosen[:count]:
            try:
                answer = requests.post(
                    f"{self.upstream}{note.path}", data=note.body, headers=dict(note.headers),
                    timeout=15,
                )  # fmt: skip
            except requests.RequestException:
                continue  # the engine is down: the sandboxes' own re-sends cover this
            assert answer.status_code < 300, (answer.status_code, answer.text)
            answered += 1
        return answered

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


# --- the engine process ----------------------------------------------------------------------


class EngineProcess:
    """``eventsync run --config FILE``, started, SIGKILLed and restarted by the test."""

    def __init__(self, config: Path, url: str, logs: Path) -> None:
        self.config, self.url, self.logs = config, url, logs
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> None:
        """Start a new incarnation and wait until it answers HTTP."""
        self.runs += 1
        log = open(self.logs / f"engine-{self.runs}.log", "wb")  # noqa: SIM115 - the child's
        self.proc = subprocess.Popen(
            [EVENTSYNC, "run", "--config", str(self.config)],
            cwd=self.config.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        wait_for(f"engine process {self.runs} to serve", self.answers, 90)

    def answers(self) -> tuple[bool, str]:
        """Whether it answers HTTP (any status: /healthz is 503 while a poller fails)."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the engine process exited:\n{self.log_tail()}")
        try:
            requests.get(f"{self.url}/healthz", timeout=2)
        except requests.RequestException as exc:
            return False, type(exc).__name__
        return True, ""

    @property
    def pid(self) -> int:
        """The running incarnation's process id."""
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no clean stop, leases and in-flight writes are left as they are."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int | None:
        """SIGTERM (a clean stop) and its exit status; None when it had to be killed."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the current incarnation's log."""
        text = (self.logs / f"engine-{self.runs}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


# --- the sandboxes, as their users and admins ------------------------------------------------


class World:
    """Both sandboxes through their admin APIs: acting as users, reading the true state (no
    fault is injected there), and injecting faults."""

    def __init__(self, pair: SandboxPair) -> None:
        self.sf, self.hopin = pair.crm.info(), pair.platform.info()
        self.http = requests.Session()

    def sf_admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the Salesforce sandbox's admin API."""
        response = self.http.request(
            method,
            f"{self.sf['admin_url']}{path}",
            json=body,
            headers={"X-Admin-Token": self.sf["admin_token"]},
            verify=self.sf["ca_bundle"],
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def hopin_admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the Hopin sandbox's admin API."""
        response = self.http.request(
            method, f"{self.hopin['admin_url']}{path}", json=body, timeout=30
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def sf_seed(self, obj: str, records: list[dict[str, Any]]) -> list[str]:
        """Create records as the integration user would (automation fires)."""
        results = self.sf_admin("POST", "/seed", {"object": obj, "records": records})
        assert all(r["success"] for r in results), results
        return [r["id"] for r in results]

    def register(self, email: str, last_name: str) -> str:
        """Someone registers on the coded ticket."""
        body = {"ticketId": self.hopin["ticket_id"], "email": email, "firstName": "Chaos",
                "lastName": last_name}  # fmt: skip
        path = f"/events/{self.hopin['event_id']}/registrations"
        return str(self.hopin_admin("POST", path, body)["data"]["id"])

    def rename(self, registration: str, last_name: str) -> None:
        """A registrant changes their name."""
        self.hopin_admin("PATCH", f"/registrations/{registration}", {"lastName": last_name})

    def records(self, obj: str) -> list[dict[str, Any]]:
        """Every live Salesforce record of ``obj``."""
        return [r for r in self.sf_admin("GET", f"/records/{obj}") if not r.get("IsDeleted")]

    def hopin_state(self, collection: str) -> list[dict[str, Any]]:
        """Every Hopin resource of ``collection``, attributes flattened."""
        state = self.hopin_admin("GET", "/state")[collection]
        return [{"id": key, **value["attributes"]} for key, value in state.items()]

    def inject(self) -> None:
        """Turn every fault on, and make Outbound Messages arrive twice and newest first."""
        for _, spec in SF_FAULTS:
            self.sf_admin("POST", "/faults", spec)
        for _, spec in HOPIN_FAULTS:
            self.hopin_admin("POST", "/faults", spec)
        self.sf_admin("POST", "/outbound/mode", {"duplicate": True, "reorder": True})

    def calm(self) -> dict[str, Counter[str]]:
        """Turn every fault off; how often each kind fired, per sandbox."""
        sf_fired = self.sf_admin("GET", "/faults")
        hopin_fired = self.hopin_admin("GET", "/faults")["faults"]
        self.sf_admin("DELETE", "/faults")
        self.hopin_admin("DELETE", "/faults")
        self.sf_admin("POST", "/outbound/mode", {"duplicate": False, "reorder": False})
        fired: dict[str, Counter[str]] = {"salesforce": Counter(), "hopin": Counter()}
        for (kind, _), fault in zip(SF_FAULTS, sf_fired, strict=True):
            fired["salesforce"][kind] += int(fault["fired"])
        for (kind, _), fault in zip(HOPIN_FAULTS, hopin_fired, strict=True):
            fired["hopin"][kind] += int(fault["fired"])
        return fired

    def api_calls(self) -> dict[str, int]:
        """API calls each sandbox served so far."""
        return {
            "salesforce": int(self.sf_admin("GET", "/counters")["total"]),
            "hopin": int(self.hopin_admin("GET", "/counters")["total"]),
        }


# --- what the test drove, and what must come of it ------------------------------------------


@attrs.define
class Plan:
    """The changes driven so far; what the remote systems must end up holding."""

    registrations: dict[str, str] = attrs.field(factory=dict)  # id -> email as registered
    names: dict[str, str] = attrs.field(factory=dict)  # id -> latest last name
    members: dict[str, str] = attrs.field(factory=dict)  # CampaignMember id -> email
    updates: int = 0

    def emails(self) -> dict[str, list[str]]:
        """Distinct registration emails (as the CRM compares them) -> their registrations."""
        by_email: dict[str, list[str]] = {}
        for registration, email in self.registrations.items():
            by_email.setdefault(email.lower(), []).append(registration)
        return by_email


@attrs.define
class Verdict:
    """The remote systems measured against the plan."""

    missing: list[str] = attrs.field(factory=list)
    duplicates: list[str] = attrs.field(factory=list)
    stale: list[str] = attrs.field(factory=list)
    unexpected: list[str] = attrs.field(factory=list)
    #: (flow, entities) whose remote record was made more than once: their history explains it.
    culprits: list[tuple[str, list[str]]] = attrs.field(factory=list, repr=False)

    @property
    def converged(self) -> bool:
        """Everything landed (duplicates cannot be undone: they are judged afterwards)."""
        return not (self.missing or self.stale)

    def text(self) -> str:
        """The first few problems of each kind."""
        parts = [
            f"{name} ({len(items)}): {items[:5]}"
            for name, items in attrs.asdict(self).items()
            if items and name != "culprits"
        ]
        return "; ".join(parts) or "none"


def judge(world: World, plan: Plan) -> Verdict:
    """Every registration exactly once as a Lead of its email carrying the latest name (for
    emails registered once; one of the names for shared ones), every CampaignMember exactly
    one magic link with its URL written back."""
    verdict = Verdict()
    leads: dict[str, list[dict[str, Any]]] = {}
    for lead in world.records("Lead"):
        leads.setdefault(str(lead.get("Email") or "").lower(), []).append(lead)
    expected = plan.emails()
    for email, registrations in expected.items():
        found = leads.get(email, [])
        if not found:
            verdict.missing.append(f"Lead {email}")
        elif len(found) > 1:
            verdict.duplicates.append(f"{len(found)} Leads {email}")
            verdict.culprits.append(("export_registrations", registrations))
        names = {plan.names[r] for r in registrations}
        if found and len(found) == 1 and found[0].get("LastName") not in names:
            verdict.stale.append(f"Lead {email}: {found[0].get('LastName')!r} not in {names}")
    verdict.unexpected += [
        f"Lead {email}"
        for email in leads
        if email.endswith(f"@{REG_DOMAIN}") and email not in expected
    ]
    links: dict[str, list[dict[str, Any]]] = {}
    for link in world.hopin_state("magicLinks"):
        links.setdefault(str(link.get("email") or "").lower(), []).append(link)
    members = {m["Id"]: m for m in world.records("CampaignMember")}
    for member_id, email in plan.members.items():
        made = links.get(email, [])
        if not made:
            verdict.missing.append(f"magic link {email}")
            continue
        if len(made) > 1:
            verdict.duplicates.append(f"{len(made)} magic links {email}")
            verdict.culprits.append(("import_registrations", [member_id]))
        written = members.get(member_id, {}).get(LINK_FIELD)
        if written not in {m["magicLink"] for m in made}:
            verdict.missing.append(f"link written back to {member_id} ({email}): {written!r}")
    verdict.unexpected += [f"magic link {e}" for e in links if e not in set(plan.members.values())]
    return verdict


def history(store: StateStore, verdict: Verdict) -> str:
    """The sync log of every entity behind a duplicate, oldest line first."""
    lines = []
    for flow, entities in verdict.culprits:
        for entity in entities:
            for entry in reversed(store.sync_log(ORG, flow, entity=entity, limit=50)):
                lines.append(
                    f"  {entry.at:%H:%M:%S.%f} {flow} {entity} {entry.outcome}: {entry.message}"
                )
    return "\n".join(lines)


class Driver:
    """Drives the changes of each round, as registrants and a Salesforce user would."""

    def __init__(self, world: World, campaign: str, rng: random.Random) -> None:
        self.world, self.campaign, self.rng = world, campaign, rng
        self.plan = Plan()
        self.twins = 0

    def round(self, number: int) -> None:
        """One round's registrations, members and updates, interleaved."""
        per_round = -(-REGISTRATIONS // ROUNDS)
        members = -(-MEMBERS // ROUNDS)
        start = number * per_round
        regs = range(start, min(REGISTRATIONS, start + per_round))
        crm = range(number * members, min(MEMBERS, (number + 1) * members))
        chunks = [list(crm)[i : i + 5] for i in range(0, len(crm), 5)]
        for n in regs:
            earlier = list(self.plan.registrations.values())
            if earlier and n % TWIN_EVERY == TWIN_EVERY - 1:
                email = self.rng.choice(earlier).upper()  # the same person, typed differently
                self.twins += 1
            else:
                email = f"person{n:03}@{REG_DOMAIN}"
            name = f"Reg{n:03}"
            registration = self.world.register(email, name)
            self.plan.registrations[registration] = email
            self.plan.names[registration] = name
            if chunks and n % 8 == 0:
                self.members(chunks.pop())
        for chunk in chunks:
            self.members(chunk)
        for registration in self.rng.sample(list(self.plan.registrations), UPDATES_PER_ROUND):
            name = f"{self.plan.names[registration]}-v{number + 2}"
            self.world.rename(registration, name)
            self.plan.names[registration] = name
            self.plan.updates += 1

    def members(self, numbers: list[int]) -> None:
        """Leads and their CampaignMembers of the coded Campaign."""
        emails = [f"invitee{n:03}@{CRM_DOMAIN}" for n in numbers]
        leads = self.world.sf_seed(
            "Lead",
            [{"LastName": f"Invitee{n:03}", "Company": "Acme", "Email": e}
             for n, e in zip(numbers, emails, strict=True)],
        )  # fmt: skip
        ids = self.world.sf_seed(
            "CampaignMember", [{"CampaignId": self.campaign, "LeadId": lead} for lead in leads]
        )
        self.plan.members.update(zip(ids, emails, strict=True))


def _holds_leases(store: StateStore, pid: int) -> bool:
    """Whether the engine process ``pid`` holds leased outbox rows right now."""
    return any((item.leased_by or "").endswith(f":{pid}") for item in store.pending(limit=1000))


def _idle(store: StateStore) -> bool:
    """No outbox row pending, in backoff or leased."""
    return not any(s.pending or s.leased for s in store.statuses(org=ORG))


def test_exactly_once_whatever_happens(
    chaos_store: StoreTarget,
    clock_ahead: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    record_property: Callable[[str, object], None],
) -> None:
    seed = int(os.environ.get("EVENTSYNC_CHAOS_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    hooks = Hooks(make_plugin_manager(environ={}))
    engine_port = free_port()
    engine_url = f"http://127.0.0.1:{engine_port}"
    relay = Relay(engine_url)
    pair = start_sandboxes(
        hooks,
        crm="salesforce",
        platform="hopin",
        org=ORG,
        endpoint=relay.url,
        options={
            "salesforce": {"outbound_backoff": 0.5, "outbound_backoff_cap": 4.0,
                           "fault_seed": seed},
            "hopin": {"delivery_backoff": 0.2, "delivery_backoff_max": 4.0, "fault_seed": seed},
        },
    )  # fmt: skip
    world = World(pair)
    config = tmp_path / "eventsync.toml"
    engine = EngineProcess(config, engine_url, tmp_path)
    inproc: Engine | None = None
    try:
        [campaign] = world.sf_seed(
            "Campaign",
            [{"Name": "Chaos", TICKET_CODE_FIELD: world.hopin["ticket_integration_code"]}],
        )
        info = pair.info()
        info["hopin"]["settings"].update(backoff_factor=0.1, backoff_max=1.0)
        flows = {k: v for k, v in pair.flows(poll_interval=1.0).items() if k != "attendance"}
        config_text, secrets_text = sandbox_config_files(
            info,
            hooks=hooks,
            secrets_file=str(tmp_path / "chaos.env"),
            flows=flows,
            engine={
                "state": chaos_store.state,
                "listen": f"127.0.0.1:{engine_port}",
                "workers": 2,
                "batch_size": 25,
                "lease_seconds": 8.0,
                "backoff_base": 0.2,
                "backoff_cap": 2.0,
                "max_attempts": 50,
            },
        )
        config.write_text(config_text)
        write_private(tmp_path / "chaos.env", secrets_text)
        engine.start()
        # The second engine: workers only, sharing the store, its process clock minutes ahead.
        inproc = Engine.from_file(config, pollers=False).start()
        store = inproc.store

        world.inject()
        driver = Driver(world, campaign, rng)
        storm_started = time.monotonic()
        kills_holding = replayed = dropped = 0
        for number in range(ROUNDS):
            world.hopin_admin("POST", "/deliveries/drop", {"count": 3})
            dropped += 3
            driver.round(number)
            replayed += relay.replay(rng, 25)
            if engine.runs <= KILLS:
                # Kill it while it holds leases: batches in flight, writes half made.
                kills_holding += within(30, lambda: _holds_leases(store, engine.pid))
                engine.kill()
                engine.start()
        landed_share = 0.8

        def most_landed() -> tuple[bool, str]:
            verdict = judge(world, driver.plan)
            total = len(driver.plan.emails()) + 2 * len(driver.plan.members)
            return len(verdict.missing) <= (1 - landed_share) * total, verdict.text()

        # Faults stay on while most of the work is done; then every captured delivery again.
        wait_for("most changes to land under faults", most_landed, 180)
        replayed += relay.replay(rng)
        fired = world.calm()
        storm = time.monotonic() - storm_started

        drain_started = time.monotonic()

        def drained() -> tuple[bool, str]:
            verdict = judge(world, driver.plan)
            return verdict.converged and _idle(store), verdict.text()

        wait_for("everything to drain", drained, DRAIN_TIMEOUT, interval=0.5)
        drain = time.monotonic() - drain_started

        verdict = judge(world, driver.plan)
        dead = store.dead_letters(limit=20)
        links = store.get_links(ORG, "export_registrations", list(driver.plan.registrations))
        lead_of = {
            str(lead.get("Email") or "").lower(): lead["Id"] for lead in world.records("Lead")
        }
        mislinked = [
            r
            for r, email in driver.plan.registrations.items()
            if r not in links or links[r].target_id != lead_of.get(email.lower())
        ]
        calls = world.api_calls()
        faults = sum(sum(c.values()) for c in fired.values())
        changes = len(driver.plan.registrations) + driver.plan.updates + len(driver.plan.members)
        summary = (
            f"CHAOS[{chaos_store.backend}] seed {seed}: changes driven {changes} "
            f"({len(driver.plan.registrations)} registrations, {driver.twins} sharing an "
            f"email, {driver.plan.updates} updates; {len(driver.plan.members)} "
            f"CampaignMembers); faults injected {faults} of {sum(calls.values())} API calls ("
            + "; ".join(
                f"{system} {sum(c.values())} of {calls[system]}: "
                + ", ".join(f"{kind} {n}" for kind, n in sorted(c.items()))
                for system, c in fired.items()
            )
            + f"); kills {KILLS} ({kills_holding} holding leases); duplicate deliveries sent "
            f"{replayed + relay.resent_by_senders()} ({replayed} replayed shuffled, "
            f"{relay.resent_by_senders()} re-sent by the sandboxes), {dropped} dropped; "
            f"duplicates found {len(verdict.duplicates) + len(verdict.unexpected)}; lost "
            f"{len(verdict.missing) + len(verdict.stale)}; in-process engine batches "
            f"{inproc.executor.stats.batches}; storm {storm:.0f}s, drain {drain:.0f}s"
        )
        record_property("chaos_summary", summary)
        with capsys.disabled():
            print(f"\n{summary}")
        assert (verdict.duplicates, verdict.unexpected, verdict.missing, verdict.stale) == (
            [],
            [],
            [],
            [],
        ), f"{verdict.text()}\n{history(store, verdict)}"
        assert mislinked == [], f"registrations not linked to their email's Lead: {mislinked[:5]}"
        assert dead == [], [(d.flow, d.entity, d.code, d.message) for d in dead]
        assert inproc.executor.stats.batches > 0, "the second engine never worked"
        assert engine.stop() == 0, engine.log_tail()
    finally:
        if inproc is not None:
            inproc.close()
        engine.stop()
        relay.stop()
        pair.stop()
