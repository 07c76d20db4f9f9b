"""The sandbox's peak of requests served at once per endpoint category (``GET /counters``'s
``peak_in_flight``), which the scale-out tests read to check concurrency limits."""

from __future__ import annotations

import threading

from eventsync.waiting import wait_until


def _peak(admin, endpoint: str) -> int:
    return int(admin.get("/counters")["peak_in_flight"].get(endpoint, 0))


def test_requests_served_at_once_are_counted_at_their_peak(rest, admin) -> None:
    admin.post("/counters/reset", {"api_usage": None})
    assert _peak(admin, "limits") == 0
    # The first request is held 5 s by a fault; the second comes while it is in flight.
    admin.post("/faults", {"endpoint": "limits", "status": 0, "latency": 5.0, "times": 1})
    slow = threading.Thread(target=lambda: rest("GET", "limits").raise_for_status())
    slow.start()
    try:
        wait_until("the slow request in flight", lambda: _peak(admin, "limits") == 1, 30, 0.01)
        assert rest("GET", "limits").status_code == 200
    finally:
        slow.join(30)
    assert _peak(admin, "limits") == 2
    # One after the other: one at a time. A reset starts the peak again from what is in flight.
    admin.post("/counters/reset", {"api_usage": None})
    for _ in range(3):
        assert rest("GET", "limits").status_code == 200
    assert _peak(admin, "limits") == 1
