"""Group commit: callers that arrive while a group is being committed form the next group, each
answered after its group's commit; a failing commit fails every caller of its group only."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from eventsync.store.groupcommit import GroupCommit
from eventsync.waiting import wait_until


class Held:
    """A commit function that holds its first group until released, and can be made to fail."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.groups: list[list[str]] = []
        self.fail: set[str] = set()

    def __call__(self, items: Sequence[str]) -> list[str]:
        if not self.groups:
            assert self.release.wait(120)
        self.groups.append(list(items))
        if self.fail & set(items):
            raise RuntimeError("the database said no")
        return [item.upper() for item in items]


def run(gc: GroupCommit[str, str], item: str, answers: dict[str, object]) -> threading.Thread:
    def call() -> None:
        try:
            answers[item] = gc.submit(item)
        except RuntimeError as exc:
            answers[item] = exc

    thread = threading.Thread(target=call)
    thread.start()
    return thread


def test_callers_waiting_for_a_commit_share_the_next_one() -> None:
    commit = Held()
    gc: GroupCommit[str, str] = GroupCommit(commit)
    answers: dict[str, object] = {}
    threads = [run(gc, "first", answers)]
    wait_until("the first group is committing", lambda: gc.committing == 1, timeout=120)
    for n, item in enumerate(["b", "c", "d"], 1):
        threads.append(run(gc, item, answers))
        wait_until(f"{n} callers queued", lambda n=n: gc.waiting == n, timeout=120)
    assert answers == {}  # nobody is answered before their group's commit
    commit.release.set()
    for thread in threads:
        thread.join(120)
    assert commit.groups == [["first"], ["b", "c", "d"]]
    assert answers == {"first": "FIRST", "b": "B", "c": "C", "d": "D"}
    assert (gc.groups, gc.requests, gc.waiting, gc.committing) == (2, 4, 0, 0)


def test_a_failed_commit_fails_its_group_and_not_the_next() -> None:
    commit = Held()
    commit.fail = {"c"}
    gc: GroupCommit[str, str] = GroupCommit(commit, limit=2)
    answers: dict[str, object] = {}
    threads = [run(gc, "first", answers)]
    wait_until("the first group is committing", lambda: gc.committing == 1, timeout=120)
    for n, item in enumerate(["b", "c", "d"], 1):
        threads.append(run(gc, item, answers))
        wait_until(f"{n} callers queued", lambda n=n: gc.waiting == n, timeout=120)
    commit.release.set()
    for thread in threads:
        thread.join(120)
    # limit=2: "b" and "c" are one group, which fails as a whole; "d" goes on alone.
    assert commit.groups == [["first"], ["b", "c"], ["d"]]
    assert answers["first"] == "FIRST" and answers["d"] == "D"
    assert all(isinstance(answers[i], RuntimeError) for i in ("b", "c"))


def test_a_lone_caller_is_answered_at_once_and_a_bad_limit_is_refused() -> None:
    gc: GroupCommit[int, int] = GroupCommit(lambda items: [i * 2 for i in items])
    assert [gc.submit(i) for i in range(3)] == [0, 2, 4]
    assert gc.groups == 3
    with pytest.raises(ValueError, match="at least one"):
        GroupCommit(lambda items: items, limit=0)
