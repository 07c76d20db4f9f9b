"""``delivery_concurrency``: the sandbox sends that many deliveries at once, as a sender with
several workers does; a bad value is a clear error naming the option."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests
from eventsync.waiting import wait_until
from eventsync_hopin.sandbox import start
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


class Gate:
    """A webhook endpoint that answers no delivery until ``width`` of them are in flight."""

    def __init__(self, width: int) -> None:
        self.barrier = threading.Barrier(width, timeout=120)
        self.emails: list[str] = []
        self.lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @Request.application
    def app(self, request: Request) -> Response:
        self.barrier.wait()  # breaks (answering 500) unless width deliveries arrive together
        with self.lock:
            self.emails.append(request.get_json()["data"]["attributes"]["email"])
        return Response("ok")


@pytest.fixture
def gate() -> Iterator[Gate]:
    gate = Gate(3)
    yield gate
    gate.barrier.abort()
    gate.server.shutdown()


def test_deliveries_are_sent_side_by_side(gate: Gate) -> None:
    handle = start(
        {
            "delivery_target": gate.url,
            "delivery_signals": ["registrationCreated"],
            "delivery_concurrency": 3,
        }
    )
    try:
        info = handle.info()
        emails = [f"side{n}@example.com" for n in range(3)]
        for email in emails:
            requests.post(
                f"{handle.url}/_admin/events/{info['event_id']}/registrations",
                timeout=5,
                json={"ticketId": info["ticket_id"], "email": email},
            ).raise_for_status()
        wait_until("three answered deliveries", lambda: len(gate.emails) == 3, timeout=120)
        assert not gate.barrier.broken
        assert sorted(gate.emails) == emails

        def noted() -> list[dict] | None:
            # The sandbox notes each 200 after the gate answered it: wait for the notes.
            log = requests.get(f"{handle.url}/_admin/deliveries", timeout=5).json()["deliveries"]
            return log if len(log) == 3 and all(d["delivered"] for d in log) else None

        log = wait_until("three deliveries noted as delivered", noted, timeout=60)
        assert all(d["attempts"] == 1 for d in log)
    finally:
        handle.stop()


def test_a_concurrency_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="delivery_concurrency"):
        start({"delivery_concurrency": 0})
