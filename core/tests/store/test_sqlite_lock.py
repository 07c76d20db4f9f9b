"""The SQLite store's write lock (``eventsync.store.sqlite_lock``): reads do not queue for it,
one engine's writers take it in turn, and a writer that cannot get it in time fails as SQLite's
own busy timeout would."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from eventsync.store import StateStore

DEADLINE = 60.0


def _holding_the_write_lock(store: StateStore, release: threading.Event) -> threading.Thread:
    """A thread in a write transaction of ``store`` until ``release`` (or the deadline)."""
    held = threading.Event()

    def hold() -> None:
        with store.engine.begin() as conn:
            conn.execute(sa.text("SELECT 1"))
            held.set()
            release.wait(DEADLINE)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(DEADLINE)
    return thread


def test_a_read_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    store = StateStore.open(path=tmp_path / "state.sqlite3")
    try:
        store.mark("acme", "export", "e1")
        release = threading.Event()
        writer = _holding_the_write_lock(store, release)
        answers: list[int] = []
        reader = threading.Thread(
            target=lambda: answers.append(store.flow_status("acme", "export").pending)
        )
        reader.start()
        # A read queued for the write lock would answer only once the writer is done.
        reader.join(DEADLINE)
        still_writing = writer.is_alive()
        release.set()
        writer.join(DEADLINE)
        assert answers == [1]
        assert still_writing, "the read answered while the write transaction was open"
    finally:
        store.close()


def test_a_writer_waits_for_the_one_before_it_then_writes(tmp_path: Path) -> None:
    store = StateStore.open(path=tmp_path / "state.sqlite3")
    try:
        release = threading.Event()
        writer = _holding_the_write_lock(store, release)
        marked = threading.Event()
        second = threading.Thread(target=lambda: (store.mark("acme", "export", "e1"), marked.set()))
        second.start()
        assert not marked.wait(0.2), "the second writer waits for the first"
        release.set()
        assert marked.wait(DEADLINE)
        writer.join(DEADLINE)
        second.join(DEADLINE)
        assert store.flow_status("acme", "export").pending == 1
    finally:
        store.close()


def test_a_writer_that_cannot_get_the_lock_in_time_fails(tmp_path: Path) -> None:
    store = StateStore.open(path=tmp_path / "state.sqlite3", busy_timeout=0.2)
    try:
        release = threading.Event()
        writer = _holding_the_write_lock(store, release)
        started = time.monotonic()
        # The driver's own error, as SQLite's busy timeout raises it from ``BEGIN IMMEDIATE``.
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            store.mark("acme", "export", "e1")
        assert time.monotonic() - started < DEADLINE
        release.set()
        writer.join(DEADLINE)
        # The lock came back: the next write goes through.
        store.mark("acme", "export", "e1")
        assert store.flow_status("acme", "export").pending == 1
    finally:
        store.close()
