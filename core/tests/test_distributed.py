"""The scale-out roles' configuration checks and the drain dispatcher."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from eventsync.config import parse_config
from eventsync.distributed import (
    Dispatcher,
    Sweeper,
    celery_settings,
    make_celery,
    require_scale_out,
)
from eventsync.distributed.app import DRAIN_TASK, queue_of
from eventsync.errors import ConfigurationError
from eventsync.store import StateStore


def _config(**engine: Any) -> Any:
    return parse_config(
        {"engine": engine, "orgs": {"a": {"plan": "enterprise"}, "b": {"plan": "enterprise",
                                                                       "queue": "big"}}},
        source="<test>",
    )  # fmt: skip


def test_a_broker_of_another_kind_is_refused_without_its_secret() -> None:
    with pytest.raises(ConfigurationError) as caught:
        _config(broker="sqs://key:secret@queue")
    [problem] = [p for p in caught.value.problems if "broker" in p]
    assert "'sqs://...' is not a broker URL" in problem and "secret" not in problem
    assert "redis://" in problem and "amqp://" in problem


def test_multi_process_roles_need_postgresql_and_a_broker() -> None:
    with pytest.raises(ConfigurationError) as caught:
        require_scale_out(_config(state="state.sqlite"), "worker")
    state, broker = caught.value.problems
    assert state.startswith("$.engine.state:") and "PostgreSQL URL" in state
    assert broker.startswith("$.engine.broker:")
    require_scale_out(_config(state="postgresql+psycopg://db/x", broker="redis://r/0"), "worker")


def test_the_celery_settings_suit_leased_batches() -> None:
    settings = celery_settings(_config(broker="redis://r/0", lease_seconds=2000))
    assert settings["task_acks_late"] and settings["task_reject_on_worker_lost"]
    assert settings["worker_prefetch_multiplier"] == 1
    assert settings["broker_transport_options"]["visibility_timeout"] == 8000


def test_marks_in_a_burst_become_one_drain_per_flow_on_the_orgs_queue() -> None:
    # Kombu's in-process transport: a real broker client, no server (not a valid config value).
    config = _config(broker="redis://r/0")
    config = attrs.evolve(config, engine=attrs.evolve(config.engine, broker="memory://"))
    app = make_celery(config)
    dispatcher = Dispatcher(app, config)
    for _ in range(50):
        dispatcher.request("a", "export_registrations")
        dispatcher.request("b", "export_registrations")
    dispatcher.start()
    dispatcher.stop()
    assert dispatcher.sent == 2
    with app.connection_for_read() as conn:
        default, big = conn.SimpleQueue("eventsync"), conn.SimpleQueue("big")
        message = default.get(timeout=5)
        assert message.headers["task"] == DRAIN_TASK
        assert message.payload[0] == ["a", "export_registrations"]
        assert big.get(timeout=5).payload[0] == ["b", "export_registrations"]
        for queue in (default, big):
            assert queue.qsize() == 0
            queue.close()


def test_a_broker_that_refuses_costs_a_logged_line_not_the_request(caplog) -> None:
    class Down:
        def send_task(self, *args: Any, **kwargs: Any) -> None:
            raise ConnectionRefusedError("broker down")

    dispatcher = Dispatcher(Down(), _config(broker="redis://r/0"))
    with caplog.at_level(logging.WARNING, "eventsync.distributed"):
        assert dispatcher.send("a", "export_registrations") is False
    assert dispatcher.failed == 1
    assert "could not dispatch a drain of a/export_registrations" in caplog.text


@pytest.fixture
def memory_dispatcher() -> Iterator[Dispatcher]:
    """A dispatcher on Kombu's in-process transport (a real broker client, no server), its
    queues emptied afterwards (the transport's queues live as long as the process)."""
    config = _config(broker="redis://r/0")
    config = attrs.evolve(config, engine=attrs.evolve(config.engine, broker="memory://"))
    dispatcher = Dispatcher(make_celery(config), config)
    yield dispatcher
    dispatcher.stop()
    with dispatcher.app.connection_for_write() as conn:
        for name in ("eventsync", "big"):
            conn.SimpleQueue(name).clear()


def test_a_sweep_dispatches_the_pairs_with_due_rows_only(tmp_path) -> None:
    store = StateStore.open(None, path=str(tmp_path / "state.sqlite3"))
    store.mark_many("a", "export", ["e1", "e2"])
    store.mark_many("b", "export", ["e3"])  # leased by a running drain: not due
    store.mark_many("b", "import", ["e4"])  # held back for a minute: not due
    assert store.lease("w", org="b", flow="export")
    store.defer(store.lease("w", org="b", flow="import"), 60.0)
    sent: list[tuple[str, str]] = []
    assert Sweeper(store, lambda org, flow: sent.append((org, flow))).sweep() == 1
    assert sent == [("a", "export")]
    store.close()


def test_a_sweep_sends_nothing_more_while_a_drain_waits_in_the_queue(
    tmp_path, memory_dispatcher: Dispatcher
) -> None:
    store = StateStore.open(None, path=str(tmp_path / "state.sqlite3"))
    store.mark_many("a", "export", ["e1"])
    store.mark_many("b", "export", ["e2"])  # queue "big"
    dispatcher = memory_dispatcher
    now = [0.0]
    sweeper = Sweeper(
        store,
        dispatcher.send,
        waiting=dispatcher.waiting,
        queue_of=functools.partial(queue_of, dispatcher.config),
        resend_after=30.0,
        clock=lambda: now[0],
    )
    assert sweeper.sweep() == 2  # both queues empty
    now[0] += 1
    assert sweeper.sweep() == 0  # a drain of each pair waits: the workers will take it
    assert (dispatcher.waiting("eventsync"), dispatcher.waiting("big")) == (1, 1)
    with dispatcher.app.connection_for_read() as conn:
        queue = conn.SimpleQueue("eventsync")
        queue.get(timeout=5).ack()  # a worker took a's drain
        queue.close()
    now[0] += 1
    assert sweeper.sweep() == 1 and dispatcher.waiting("eventsync") == 1
    now[0] += 30  # the queues never emptied: each pair is sent again after resend_after
    assert sweeper.sweep() == 2
    assert (dispatcher.waiting("eventsync"), dispatcher.waiting("big")) == (2, 2)
    store.close()


def test_a_sweep_sends_every_due_pair_when_the_broker_cannot_say(tmp_path) -> None:
    class Down:
        def send_task(self, *args: Any, **kwargs: Any) -> None:
            raise ConnectionRefusedError("broker down")

        def connection_for_read(self) -> Any:
            raise ConnectionRefusedError("broker down")

    store = StateStore.open(None, path=str(tmp_path / "state.sqlite3"))
    store.mark_many("a", "export", ["e1"])
    dispatcher = Dispatcher(Down(), _config(broker="redis://r/0"))
    assert dispatcher.waiting("eventsync") is None
    sweeper = Sweeper(store, dispatcher.send, waiting=dispatcher.waiting)
    assert sweeper.sweep() == 1 and sweeper.sweep() == 1
    assert dispatcher.failed == 2  # each logged; the next sweep tries again
    store.close()
