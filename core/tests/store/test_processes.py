"""Separate OS processes: concurrent executors never share a row; SIGTERM stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

PROC = str(Path(__file__).with_name("_proc.py"))


def _spawn(target, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, PROC, *target.argv(), "--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_ready(proc: subprocess.Popen[str]) -> None:
    line = proc.stdout.readline()
    assert line.strip() == "READY", (line, proc.stderr.read() if proc.poll() is not None else "")


def test_two_processes_never_process_the_same_row(target, tmp_path) -> None:
    store = target.open()
    entities = [f"e{n:04}" for n in range(600)]
    store.mark_many("acme", "export", entities)
    go = tmp_path / "go"
    outs = [tmp_path / "a.txt", tmp_path / "b.txt"]
    procs = [
        _spawn(target, out, "--go", str(go), "--until-empty", "--batch", "10", "--sleep", "0.01")
        for out in outs
    ]
    try:
        for proc in procs:
            _wait_ready(proc)
        go.touch()
        for proc in procs:
            assert proc.wait(60) == 0, proc.stderr.read()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    seen = [out.read_text().split() for out in outs]
    assert all(seen), "both processes must have worked"
    assert len(seen[0]) + len(seen[1]) == 600
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == entities
    assert store.pending() == []


def test_sigterm_stops_cleanly_and_loses_nothing(target, tmp_path) -> None:
    store = target.open()
    entities = [f"e{n:04}" for n in range(400)]
    store.mark_many("acme", "export", entities)
    out = tmp_path / "done.txt"
    out.touch()
    proc = _spawn(target, out, "--batch", "5", "--sleep", "0.05", "--workers", "2")
    try:
        _wait_ready(proc)
        deadline = time.monotonic() + 30
        while len(out.read_text().split()) < 20:
            assert time.monotonic() < deadline, "the executor did not start working"
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "STOPPED clean=True" in proc.stdout.read()
    processed = out.read_text().split()
    assert len(processed) == len(set(processed))
    o = store.tables.outbox
    with store.engine.connect() as conn:
        leased = conn.execute(
            sa.select(sa.func.count()).where(o.c.lease_token.is_not(None))
        ).scalar()
    assert leased == 0
    pending = {i.entity for i in store.pending(limit=1000)}
    done = {e.entity for e in store.sync_log(outcome="done", limit=1000)}
    assert 0 < len(done) < 400, "SIGTERM must arrive mid-run"
    assert done == set(processed), "every batch the job ran was recorded"
    assert not pending & done
    assert pending | done == set(entities)
