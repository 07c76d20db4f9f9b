"""Group commit: the work of callers that arrive together done in one transaction.

A webhook burst sent by several connections at once would be a transaction (and, on SQLite with
``synchronous = FULL``, a disk flush) per delivery. Here the first caller leads: it takes every
request queued meanwhile (up to ``limit``), runs them in one ``commit`` call and answers each
caller only after that call returned, so an acknowledgement still means "durable". Callers that
arrive while a group is being committed queue up and form the next group, led by the first of
them. A lone caller is its own group of one and waits for nobody: no timer, no added latency.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import attrs

__all__ = ["GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")


@attrs.define(eq=False)
class _Waiter(Generic[T, R]):
    """One caller's request, and its answer once its group is committed."""

    item: T
    done: threading.Event = attrs.field(factory=threading.Event)
    lead: bool = False
    result: R | None = None
    error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """Runs ``commit(items) -> results`` (one result per item, in order) for groups of callers.

    ``commit`` must do all of a group's work in one transaction: when it raises, every caller
    of the group gets the exception (nothing of theirs was stored; their senders retry).
    """

    def __init__(self, commit: Callable[[Sequence[T]], Sequence[R]], *, limit: int = 64) -> None:
        if limit < 1:
            raise ValueError("a group holds at least one request")
        self._commit = commit
        self._limit = limit
        self._lock = threading.Lock()
        self._queue: list[_Waiter[T, R]] = []
        self._leading = False
        self._committing = 0
        #: Groups committed (transactions run), and requests answered: their ratio is the
        #: mean group size.
        self.groups = 0
        self.requests = 0

    @property
    def waiting(self) -> int:
        """Requests queued for the next group (not counting the group being committed)."""
        with self._lock:
            return len(self._queue)

    @property
    def committing(self) -> int:
        """Requests in the group being committed now (0 when none is)."""
        with self._lock:
            return self._committing

    def submit(self, item: T) -> R:
        """Run ``item`` in the next group; returns its result once the group is committed."""
        waiter: _Waiter[T, R] = _Waiter(item)
        with self._lock:
            self._queue.append(waiter)
            if not self._leading:
                self._leading = waiter.lead = True
        if not waiter.lead:
            waiter.done.wait()  # set with an answer, or to lead the next group
        if waiter.lead:
            self._lead()
        if waiter.error is not None:
            raise waiter.error
        return waiter.result  # type: ignore[return-value]

    def _lead(self) -> None:
        with self._lock:
            group, self._queue[: self._limit] = self._queue[: self._limit], []
            self._committing = len(group)
        try:
            results = self._commit([w.item for w in group])
            if len(results) != len(group):
                raise RuntimeError(f"group commit: {len(results)} results for {len(group)}")
            for waiter, result in zip(group, results, strict=True):
                waiter.result = result
        except BaseException as exc:  # every caller of the group learns the same failure
            for waiter in group:
                waiter.error = exc
        finally:
            with self._lock:
                self._committing = 0
                self.groups += 1
                self.requests += len(group)
                successor = self._queue[0] if self._queue else None
                self._leading = successor is not None
                if successor is not None:
                    successor.lead = True
            for waiter in group:
                waiter.lead = False
                waiter.done.set()
            if successor is not None:
                successor.done.set()
