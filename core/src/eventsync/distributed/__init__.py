"""Scale-out on Celery: the ``serve``, ``worker`` and ``scheduler`` roles (docs/scale-out.md).

The outbox stays the source of truth. A Celery message only says "drain org X, flow F"; the
worker that takes it leases due rows through the same ``Executor.run_once`` step the embedded
threads use, so a lost message costs nothing (the scheduler's sweep dispatches every flow with
due rows again) and a duplicated or late one costs one empty lease. Celery and its broker
client are the optional extra ``eventsync[scale]``.
"""

from .app import DRAIN_TASK, celery_settings, make_celery
from .dispatch import Dispatcher
from .exclusive import StoreLocks
from .limits import OrgSlots
from .roles import require_scale_out
from .scheduler import SchedulerLock, Sweeper

__all__ = [
    "DRAIN_TASK",
    "celery_settings",
    "make_celery",
    "Dispatcher",
    "OrgSlots",
    "require_scale_out",
    "SchedulerLock",
    "Sweeper",
    "StoreLocks",
]
