"""Running a scale-out deployment as real processes, for tests/e2e/test_scale_out*.py.

``Deployment`` writes one configuration for the sandboxes (a PostgreSQL database of its own,
a broker, a queue of its own so that tests sharing the broker never take each other's drains)
and starts ``eventsync serve``, ``worker`` and ``scheduler`` processes from it; ``Relay`` is a
TCP proxy between the workers and the broker whose connections the test can cut.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import Any

import requests
from eventsync.distributed.fleet import lease_holders, scratch_database
from eventsync.plugins import Hooks
from eventsync.sandbox_env import SandboxPair, sandbox_config_files, write_private
from eventsync.waiting import wait_until

EVENTSYNC = str(Path(sys.executable).with_name("eventsync"))
PG_URL = os.environ.get(
    "EVENTSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BROKERS = {
    "redis": os.environ.get("EVENTSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "rabbitmq": os.environ.get("EVENTSYNC_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}

#: The ``[engine]`` settings of the tests' deployments: small batches, short leases and backoff.
ENGINE = {
    "workers": 2,
    "batch_size": 20,
    "batch_linger": 0.0,
    "lease_seconds": 10.0,
    "backoff_base": 0.2,
    "backoff_cap": 2.0,
    "max_attempts": 50,
    "sweep_interval": 1.0,
}


def wait_for(what: str, probe: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """``probe()`` once truthy (``eventsync.waiting.wait_until``, its interval the tests')."""
    return wait_until(what, probe, timeout, interval)


def fresh_database() -> AbstractContextManager[str]:
    """A PostgreSQL database of its own (its URL), dropped afterwards."""
    return scratch_database(PG_URL, "scale")


class Role:
    """One ``eventsync ROLE --config FILE`` process, its output in a log file."""

    def __init__(self, role: str, config: Path, log: Path, *args: str) -> None:
        self.role, self.log = role, log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [EVENTSYNC, role, "--config", str(config), *args],
                cwd=config.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
            )

    def output(self) -> str:
        """Everything it printed so far."""
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        """Whether it still runs."""
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        """Send ``sig`` (SIGTERM, SIGKILL ...)."""
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Its exit status, within ``timeout`` seconds (AssertionError with its log otherwise)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.role} did not exit:\n{self.output()[-3000:]}") from None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL when it does not exit within a minute."""
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class Relay:
    """A TCP proxy to ``upstream`` (host, port) whose connections ``cut()`` closes."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._closed = False
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, broker: str) -> str:
        """``broker`` with its host and port replaced by this relay's."""
        scheme, rest = broker.split("://", 1)
        creds, _, tail = rest.rpartition("@")
        _hostport, _, path = tail.partition("/")
        return f"{scheme}://{creds + '@' if creds else ''}127.0.0.1:{self.port}/{path}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in sel.select(1.0):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            for s in (a, b):
                s.close()

    def cut(self) -> int:
        """Close every open connection (both ends, as a network failure would); how many."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for s in pair:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
        self.cuts += 1
        return len(pairs)

    def close(self) -> None:
        """Stop accepting and cut everything."""
        self._closed = True
        self.listener.close()
        self.cut()


class Sandboxes:
    """Both sandboxes through their admin APIs (the true state, no faults)."""

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

    def register(self, email: str) -> str:
        """Someone registers on the coded ticket."""
        body = {"ticketId": self.hopin["ticket_id"], "email": email, "firstName": "Scale",
                "lastName": email.partition("@")[0]}  # fmt: skip
        path = f"{self.hopin['admin_url']}/events/{self.hopin['event_id']}/registrations"
        response = self.http.post(path, json=body, timeout=30)
        response.raise_for_status()
        return str(response.json()["data"]["id"])

    def leads_by_email(self) -> dict[str, int]:
        """How many live Leads hold each email."""
        counts: dict[str, int] = {}
        for lead in self.sf_admin("GET", "/records/Lead"):
            if not lead.get("IsDeleted"):
                email = str(lead.get("Email") or "").lower()
                counts[email] = counts.get(email, 0) + 1
        return counts


def lease_holder_pids(database: str) -> set[int]:
    """The process ids of the workers holding live leases."""
    return {int(holder.rpartition(":")[2]) for holder in lease_holders(database)}


def accepted_notifications(url: str) -> float:
    """Notifications the receiver at ``url`` accepted (its /metrics)."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("eventsync_notifications_total{") and 'result="accepted"' in line
    )


def write_config(
    directory: Path,
    pair: SandboxPair,
    hooks: Hooks,
    *,
    state: str,
    broker: str,
    listen: str,
    queue: str,
    engine: dict[str, Any] | None = None,
    name: str = "eventsync.toml",
    poll_interval: float = 1.0,
    flows: tuple[str, ...] = ("export_registrations",),
) -> Path:
    """A config file (and secrets file) for ``pair`` with the scale-out settings (``flows`` of
    the sandboxes' default flows)."""
    every = pair.flows(poll_interval=poll_interval)
    chosen = {k: v for k, v in every.items() if k in flows}
    text, secrets = sandbox_config_files(
        pair.info(),
        hooks=hooks,
        secrets_file=str(directory / "scale.env"),
        flows=chosen,
        engine={"state": state, "broker": broker, "listen": listen, **ENGINE, **(engine or {})},
    )
    text = text.replace(f"[orgs.{pair.org}]\n", f'[orgs.{pair.org}]\nqueue = "{queue}"\n', 1)
    path = directory / name
    path.write_text(text)
    write_private(directory / "scale.env", secrets)
    return path
