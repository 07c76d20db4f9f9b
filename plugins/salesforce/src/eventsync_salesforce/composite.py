"""Composite packing: several sObject Collections writes or queries in one API call.

Salesforce's Composite resource (``POST /composite``) runs up to 25 subrequests, of which up to
5 may be sObject Collections or query operations, and "counts as a single call toward your API
limits". Every subrequest eventsync packs is one of those five, so :func:`send` packs them five
to a call with ``allOrNone: false``: one subrequest failing leaves the others standing, and
each answer comes back with its own status and body.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs

if TYPE_CHECKING:
    from .connection import SalesforceConnection

#: Subrequests of a Composite request that may be Collections or queries (Salesforce's limit).
MAX_HEAVY = 5


@attrs.frozen
class Subrequest:
    """One subrequest: ``path`` is relative to the versioned REST base (``composite/sobjects``)."""

    method: str
    path: str
    body: Any = None

    @classmethod
    def query(cls, statement: str) -> Subrequest:
        """A SOQL query subrequest."""
        return cls("GET", f"query?q={quote(statement, safe='')}")


@attrs.frozen
class Answer:
    """A subrequest's answer: its HTTP status and decoded body."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status < 300


def send(
    conn: SalesforceConnection, subrequests: Sequence[Subrequest], *, idempotent: bool = True
) -> list[Answer]:
    """Run ``subrequests`` in Composite calls of up to five; one answer each, in order.

    :param idempotent: False when a subrequest creates records: a lost answer then raises
        ``OutcomeUnknown`` instead of being resent (see ``SalesforceConnection.call``).
    """
    answers: list[Answer] = []
    for start in range(0, len(subrequests), MAX_HEAVY):
        group = subrequests[start : start + MAX_HEAVY]
        body = {
            "allOrNone": False,
            "compositeRequest": [
                {
                    "method": sub.method,
                    "url": f"/services/data/v{conn.api_version}/{sub.path}",
                    "referenceId": f"r{start + n}",
                    **({"body": sub.body} if sub.body is not None else {}),
                }
                for n, sub in enumerate(group)
            ],
        }
        answer = conn.restful("composite", method="POST", json=body, idempotent=idempotent)
        entries = (answer or {}).get("compositeResponse") or []
        by_reference = {str(e.get("referenceId")): e for e in entries}
        for n in range(len(group)):
            entry = by_reference.get(f"r{start + n}", {})
            answers.append(Answer(int(entry.get("httpStatusCode") or 500), entry.get("body")))
    return answers
