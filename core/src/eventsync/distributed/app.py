"""The Celery application of the scale-out roles, and its settings for this workload.

Why each setting (docs/scale-out.md repeats this for operators):

* ``task_acks_late`` and ``task_reject_on_worker_lost``: a message is acknowledged only after
  its drain ran, so a worker killed mid-batch has its message delivered again; the rows it had
  leased come back when their lease ends (on the database clock), so nothing is lost, and the
  outbox's lease and completion rules keep anything from being written twice.
* ``worker_prefetch_multiplier = 1``: a worker thread holds at most one message it is not
  running, so a busy worker never sits on drains an idle one could run.
* ``visibility_timeout`` (Redis): longer than a batch lease with room to spare, so Redis does
  not hand a message that is still running to a second worker (that would cost one empty
  lease, never a double write, but wastes a thread).
* ``task_ignore_result``: drains return nothing worth keeping; no result backend is needed.
* idempotent task: a drain leases whatever is due; a duplicate finds nothing and returns.
"""

from __future__ import annotations

from typing import Any

from ..config import Config

__all__ = ["DRAIN_TASK", "DEFAULT_QUEUE", "celery_settings", "make_celery", "queue_of"]

#: The one task: ``drain(org, flow)``.
DRAIN_TASK = "eventsync.drain"
#: The queue of orgs that name none (``[orgs.X] queue``).
DEFAULT_QUEUE = "eventsync"


def celery_settings(config: Config) -> dict[str, Any]:
    """The Celery settings of this workload (see the module docstring for why)."""
    lease = config.engine.lease_seconds
    return {
        "broker_url": config.engine.broker,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_default_queue": DEFAULT_QUEUE,
        "broker_transport_options": {"visibility_timeout": max(3600.0, 4 * lease)},
        "broker_connection_retry_on_startup": True,
        # A drain running when the broker connection drops finishes (a thread cannot be
        # cancelled safely); its message comes again and costs one empty lease.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        # eventsync's own logging (text or JSON lines, secrets hidden) stays in charge.
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "task_serializer": "json",
        "accept_content": ["json"],
    }


def make_celery(config: Config) -> Any:
    """A Celery application for ``config``'s broker (not connected until used)."""
    from celery import Celery

    app = Celery("eventsync", set_as_current=False)
    app.conf.update(celery_settings(config))
    return app


def queue_of(config: Config, org: str) -> str:
    """The queue an organisation's drains go to."""
    found = config.orgs.get(org)
    return (found.queue if found is not None else "") or DEFAULT_QUEUE
