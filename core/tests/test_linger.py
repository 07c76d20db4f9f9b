"""Executor linger: a young partial batch waits for more changes, so remote calls are fuller.

Neither test depends on timing: with linger, the wait is far longer than the test needs and
ends when the batch fills; without it, the test waits for the first batch before marking more.
"""

import threading

from eventsync.executor import Executor, Outcome
from eventsync.store import StateStore
from eventsync.waiting import wait_until


def run_with(linger: float, tmp_path, *, wait_for_first: bool) -> list[int]:
    store = StateStore.open(path=tmp_path / f"linger-{linger}.sqlite")
    sizes: list[int] = []
    done = threading.Event()

    def job(items):
        sizes.append(len(items))
        if sum(sizes) >= 31:
            done.set()
        return [Outcome.done() for _ in items]

    executor = Executor(
        store, job, workers=1, batch_size=31, poll_interval=0.05, linger=linger
    ).start()
    try:
        store.mark("acme", "export", "first")
        if wait_for_first:
            wait_until("the first change's batch", lambda: sizes, timeout=30)
        store.mark_many("acme", "export", [f"e{i}" for i in range(30)])
        assert done.wait(30)
    finally:
        executor.stop()
        store.close()
    return sizes


def test_linger_gathers_changes_into_one_batch(tmp_path):
    # A partial, young batch waits (up to a minute); the 30 more changes fill it to batch_size.
    assert run_with(60.0, tmp_path, wait_for_first=False) == [31]


def test_without_linger_the_first_change_goes_alone(tmp_path):
    assert run_with(0.0, tmp_path, wait_for_first=True)[0] == 1
