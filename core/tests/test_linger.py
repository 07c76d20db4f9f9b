"""Executor linger: a young partial batch waits for more changes, so remote calls are fuller."""

import threading
import time

from eventsync.executor import Executor, Outcome
from eventsync.store import StateStore


def run_with(linger: float, tmp_path) -> list[int]:
    store = StateStore.open(path=tmp_path / f"linger-{linger}.sqlite")
    sizes: list[int] = []
    done = threading.Event()

    def job(items):
        sizes.append(len(items))
        if sum(sizes) >= 31:
            done.set()
        return [Outcome.done() for _ in items]

    executor = Executor(store, job, workers=1, poll_interval=0.05, linger=linger).start()
    try:
        store.mark("acme", "export", "first")
        time.sleep(0.15)
        store.mark_many("acme", "export", [f"e{i}" for i in range(30)])
        assert done.wait(10)
    finally:
        executor.stop()
        store.close()
    return sizes


def test_linger_gathers_changes_into_one_batch(tmp_path):
    assert run_with(0.6, tmp_path) == [31]


def test_without_linger_the_first_change_goes_alone(tmp_path):
    assert run_with(0.0, tmp_path)[0] == 1
