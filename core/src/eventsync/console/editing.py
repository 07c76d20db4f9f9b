"""Saving a screen's edit: the fingerprint check, validation worded as ``eventsync check``
words it, and which problems refuse the save.

A screen edits one part of the file (``$.orgs.acme.flows.attendance``). A problem inside that
part refuses the save; a problem elsewhere (a screen not done yet) is shown but does not block,
so the guide can be followed one screen at a time, as in the original app.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ..secrets_store import SecretsStore
from .document import STALE, ConcurrentEdit, ConfigDocument

__all__ = ["Outcome", "save_part", "stale"]


@attrs.frozen
class Outcome:
    """What a save did.

    :ivar saved: True when the file (and the secrets) were written.
    :ivar refused: the problems of the edited part (or the stale-page message).
    :ivar elsewhere: the problems of other parts of the file, for information.
    """

    saved: bool
    refused: tuple[str, ...] = ()
    elsewhere: tuple[str, ...] = ()


def stale(doc: ConfigDocument, page_fingerprint: str | None) -> bool:
    """True when the page was made from another version of the file than ``doc``."""
    return page_fingerprint != doc.fingerprint


def _inside(problem: str, scope: str | None) -> bool:
    if scope is None:
        return False
    head = problem.split(":", 1)[0]
    return head == scope or head.startswith((scope + ".", scope + "["))


def save_part(
    doc: ConfigDocument,
    scope: str | None,
    page_fingerprint: str | None,
    *,
    secrets: SecretsStore | None = None,
    new_secrets: Mapping[str, str] | None = None,
) -> Outcome:
    """Validate ``doc`` (already edited) and save it unless the part ``scope`` has problems
    (None: no problem refuses it, e.g. settings kept while an OAuth sign-in completes them);
    ``new_secrets`` (variable -> value) are written to ``secrets`` only when the file is."""
    if stale(doc, page_fingerprint):
        return Outcome(False, (STALE,))
    problems = doc.problems()
    refused = tuple(p for p in problems if _inside(p, scope))
    elsewhere = tuple(p for p in problems if not _inside(p, scope))
    if refused:
        return Outcome(False, refused, elsewhere)
    try:
        doc.save()
    except ConcurrentEdit:
        return Outcome(False, (STALE,))
    if secrets is not None and new_secrets:
        secrets.update(dict(new_secrets))
    return Outcome(True, (), elsewhere)
