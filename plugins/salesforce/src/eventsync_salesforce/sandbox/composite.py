"""The Composite resource, ``POST /services/data/vXX.X/composite``.

As Salesforce documents it: up to 25 subrequests, of which at most 5 are sObject Collections
or query operations; the whole request counts as one API call; the answer is always HTTP 200
with one ``compositeResponse`` entry per subrequest (its ``httpStatusCode`` and ``body``), so
one subrequest failing leaves the others' results standing (``allOrNone: false``). Each
subrequest is dispatched through the app itself (Werkzeug's test client, in process), so it
meets the same handlers and its own injected faults, but is neither counted nor delayed again.
``allOrNone: true`` is refused: the sandbox cannot roll back subrequests that completed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask, Response, request

from .errors import SfError
from .org import Org

MAX_SUBREQUESTS = 25
MAX_HEAVY = 5
_HEAVY = re.compile(r"^/services/data/v\d+\.\d/(composite/sobjects|query|queryAll)(/|\?|$)")


def register_composite(app: Flask, org: Org, marker: str) -> None:
    """Add the Composite route to ``app``; subrequests carry ``marker`` in their environ."""

    @app.post("/services/data/v<version>/composite")
    def composite(version: str) -> Response:
        body = _body()
        subrequests = body["compositeRequest"]
        client = app.test_client()
        answers: list[dict[str, Any]] = []
        references: set[str] = set()
        for sub in subrequests:
            reference = str(sub.get("referenceId") or "")
            if not reference or reference in references:
                raise SfError(
                    "INVALID_INPUT", f"referenceId {reference!r} is missing or used twice", [], 400
                )
            references.add(reference)
            answer = client.open(
                str(sub["url"]),
                method=str(sub.get("method", "GET")).upper(),
                json=sub.get("body"),
                headers={
                    "Authorization": request.headers.get("Authorization", ""),
                    **{str(k): str(v) for k, v in (sub.get("httpHeaders") or {}).items()},
                },
                environ_overrides={marker: True},
            )
            data = answer.get_data()
            answers.append(
                {
                    "body": json.loads(data) if data and answer.is_json else None,
                    "httpHeaders": {},
                    "httpStatusCode": answer.status_code,
                    "referenceId": reference,
                }
            )
        return Response(
            json.dumps({"compositeResponse": answers}),
            content_type="application/json;charset=UTF-8",
        )


def _body() -> dict[str, Any]:
    """The Composite body, checked against the documented limits."""
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError as exc:
        raise SfError("JSON_PARSER_ERROR", f"Unexpected character: {exc}", [], 400) from None
    if not isinstance(body, dict) or not isinstance(body.get("compositeRequest"), list):
        raise SfError(
            "JSON_PARSER_ERROR", "The request body must contain compositeRequest", [], 400
        )
    if body.get("allOrNone"):
        raise SfError(
            "INVALID_INPUT", "the sandbox does not emulate allOrNone Composite requests", [], 400
        )
    subrequests = body["compositeRequest"]
    if not subrequests or len(subrequests) > MAX_SUBREQUESTS:
        raise SfError(
            "INVALID_INPUT",
            f"a Composite request holds 1 to {MAX_SUBREQUESTS} subrequests, not {len(subrequests)}",
            [],
            400,
        )
    heavy = 0
    for sub in subrequests:
        if not isinstance(sub, dict) or not isinstance(sub.get("url"), str):
            raise SfError("INVALID_INPUT", "every subrequest needs a method and a url", [], 400)
        if re.match(r"^/services/data/v\d+\.\d/composite/?(\?|$)", sub["url"]):
            raise SfError("INVALID_INPUT", "a Composite request cannot contain another", [], 400)
        heavy += bool(_HEAVY.match(sub["url"]))
    if heavy > MAX_HEAVY:
        raise SfError(
            "INVALID_INPUT",
            f"at most {MAX_HEAVY} subrequests of a Composite request may be sObject Collections "
            f"or query operations, not {heavy}",
            [],
            400,
        )
    return body
