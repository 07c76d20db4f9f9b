"""ExampleCRM hook implementations: the smallest complete system plugin.

Each per-system hook first checks that the system (or the connection) is ours and returns
None otherwise, so other plugins can answer.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import requests
from eventsync import hookimpl
from eventsync.errors import AuthenticationError, RetryableError
from eventsync.models import (
    FieldSchema,
    ObjectSchema,
    PullRequest,
    PushRequest,
    PushResult,
    Record,
    RemoteFailure,
    Schema,
    SystemSettings,
)

SYSTEM = "examplecrm"


@attrs.frozen
class Connection:
    """An authenticated ExampleCRM session for one org."""

    org: str
    url: str
    session: requests.Session = attrs.field(repr=False, eq=False)
    system: str = SYSTEM


def _get(conn: Connection, path: str, **params) -> object:
    response = conn.session.get(conn.url + path, params=params, timeout=10)
    if response.status_code >= 500:
        raise RetryableError(f"HTTP_{response.status_code}", response.text, system=SYSTEM)
    response.raise_for_status()
    return response.json()


@hookimpl
def authenticate(system: str, settings: SystemSettings) -> Connection | None:
    """Open a session with the API key named by ``api_key_env``."""
    if system != SYSTEM:
        return None
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {settings.secret('api_key')}"
    conn = Connection(org=settings.org, url=settings.get("url"), session=session)
    response = session.get(conn.url + "/schema", timeout=10)
    if response.status_code == 401:
        body = response.json()
        raise AuthenticationError(SYSTEM, body["error"], body["message"], hint="check api_key_env")
    return conn


@hookimpl
def discover_schema(connection, objects) -> Schema | None:
    """Turn ``GET /schema`` into the core schema."""
    if connection.system != SYSTEM:
        return None
    raw = _get(connection, "/schema")
    return Schema(
        SYSTEM,
        {
            name: ObjectSchema(name, tuple(FieldSchema(f, t) for f, t in fields.items()))
            for name, fields in raw.items()
            if objects is None or name in objects
        },
    )


@hookimpl
def pull(connection, request: PullRequest) -> Iterator[Record] | None:
    """Read contacts by id."""
    if connection.system != SYSTEM:
        return None
    rows = _get(connection, "/contacts", id=list(request.ids))
    return iter([Record(SYSTEM, request.object, row.pop("id"), row) for row in rows])


@hookimpl
def push(connection, request: PushRequest) -> list[PushResult] | None:
    """Insert contacts; one result per item, in order."""
    if connection.system != SYSTEM:
        return None
    response = connection.session.post(
        connection.url + "/contacts", json=[dict(item.fields) for item in request.items], timeout=10
    )
    return [
        PushResult(item.key, ok=True, id=r["id"], created=True)
        if r["ok"]
        else PushResult(item.key, ok=False, error=RemoteFailure(r["error"], r["message"]))
        for item, r in zip(request.items, response.json(), strict=True)
    ]


@hookimpl
def start_sandbox(system: str, options):
    """Start the in-memory ExampleCRM sandbox."""
    if system != SYSTEM:
        return None
    from .sandbox import ExampleSandbox

    return ExampleSandbox()
