"""docs/openapi.yaml describes the HTTP surface of ``eventsync run``, and the live server keeps to it.

The file is valid OpenAPI 3.1. Then schemathesis generates requests from it (its examples,
coverage and fuzzing phases: boundary values, schema-violating inputs, undocumented methods and
content types, random bodies) and sends them to a real server over both sandboxes, checking
that no answer is a 5xx, that every status and content type is one the spec documents for the
operation, that documented headers are there (``Allow`` on a 405) and that every body matches
its documented schema.

Generated names are rarely configured ones and generated deliveries are never signed, so each
case is steered (``steer``), deterministically from its own content, towards the organisation,
systems, token, org id and clock of the running sandboxes, and the session signs the Hopin
deliveries that come without a signature: most cases reach the plugins' parsers and the engine's
marks, the rest test the refusals in front of them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import uuid
import zlib
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import attrs
import pytest
import requests
import schemathesis
import sqlalchemy as sa
import yaml
from eventsync.engine import Engine
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import SandboxPair, config_for, free_port, start_sandboxes
from eventsync.server import Server, make_app
from eventsync.store import MAX_KEY, StateStore
from eventsync_hopin.sandbox.subscriptions import sign
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
ORG = "e2e"
PG_URL = os.environ.get(
    "EVENTSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
HOOKS = ("/hooks/{org}/{system}", "/hooks/{org}/{system}/{suffix}")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
]
#: Explicit, so no schemathesis.toml is discovered. /healthz and /readyz answer 503 by design
#: here: the engine is not started (its 200 is checked against the spec below).
CONFIG = schemathesis.Config.from_dict(
    {
        "operations": [
            {
                "include-operation-id": "health",
                "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "4xx", "503"]}},
            },
            {
                "include-operation-id": "readiness",
                "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "4xx", "503"]}},
            },
        ]
    }
)
SCHEMA = schemathesis.openapi.from_path(SPEC, config=CONFIG)
NOTIFY = SCHEMA["/hooks/{org}/{system}"]["POST"]


@schemathesis.deserializer("text/plain", "text/xml")
def _text(ctx: schemathesis.DeserializationContext, response: schemathesis.Response) -> str:
    """Text bodies are validated as strings (the error texts, the metrics, the Ack)."""
    return response.content.decode(response.encoding or "utf-8")


@attrs.define
class Live:
    """A running server over both sandboxes, and what a genuine sender would know."""

    url: str
    engine: Engine
    hopin: dict[str, Any]
    org_id: str
    token: str
    session: requests.Session


class SigningSession(requests.Session):
    """Signs each unsigned delivery to the organisation's Hopin endpoint, as Hopin would."""

    def __init__(self, secret: str, header: str) -> None:
        super().__init__()
        self.secret, self.header = secret, header

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        path = (request.path_url or "").split("?")[0]
        if path.startswith(f"/hooks/{ORG}/hopin") and self.header not in request.headers:
            body = request.body or b""
            raw = body.encode() if isinstance(body, str) else body
            request.headers[self.header] = sign(self.secret, raw)
        return super().send(request, **kwargs)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """Both sandboxes (the Salesforce one with its Outbound Message token), an engine that is
    not started (no worker acts on the generated marks) on a SQLite or a PostgreSQL store, and
    its server."""
    hooks = Hooks(make_plugin_manager(environ={}))
    port = free_port()
    pair: SandboxPair = start_sandboxes(
        hooks,
        crm="salesforce",
        platform="hopin",
        org=ORG,
        endpoint=f"http://127.0.0.1:{port}",
        triggers=True,
    )
    schema = f"openapi_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        store = StateStore.open(None, path=str(tmp_path_factory.mktemp("openapi") / "state.sqlite"))
    else:
        store = StateStore.open(PG_URL, schema=schema)
    config = config_for(pair, state="unused.sqlite", listen=f"127.0.0.1:{port}")
    engine = Engine(config, hooks=hooks, env=pair.secrets(), store=store, pollers=False)
    server = Server(engine, port=port).start()
    hopin = pair.platform.info()
    session = SigningSession(hopin["webhook_secret"], hopin["signature_header"])
    try:
        yield Live(
            url=server.url,
            engine=engine,
            hopin=hopin,
            org_id=pair.crm.info()["org_id"],
            token=pair.secrets()["SF_OUTBOUND_TOKEN"],
            session=session,
        )
    finally:
        session.close()
        server.stop()
        engine.close()
        store.close()
        pair.stop()
        if request.param == "postgres":
            db = sa.create_engine(PG_URL)
            with db.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            db.dispose()


def test_the_spec_is_valid_openapi_3_1_and_every_error_is_plain_text():
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    for name, response in spec["components"]["responses"].items():
        if name != "Acknowledged":
            assert list(response["content"]) == ["text/plain"], name


def test_the_spec_has_exactly_the_servers_routes(live: Live) -> None:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    documented = {
        (path, method.upper())
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    }
    served = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method)
        for rule in make_app(live.engine).url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")  # implied by GET, and by every route
    }
    assert served == documented


def _choice(digest: int, index: int, ways: int = 4) -> int:
    """The ``index``-th choice among ``ways`` made from ``digest`` (2 bits per choice)."""
    return (digest >> (2 * index)) % ways


def _mapping(parent: MutableMapping[str, Any] | None, key: str) -> MutableMapping[str, Any] | None:
    """``parent[key]`` when both are mappings (a generated body may have any shape)."""
    child = parent.get(key) if parent is not None else None
    return child if isinstance(child, MutableMapping) else None


def steer(case: schemathesis.Case, live: Live) -> None:
    """Point most generated notifications at what the sandboxes configure: three in four get the
    configured organisation, most a configured system (usually the one their body is for), the
    Salesforce token, the org id, a current ``occurredAt`` and the Hopin organisation and event.
    The choices come from a digest of the generated case, so a run is reproducible and a
    failing case shrinks as usual."""
    if case.operation.path not in HOOKS:
        return
    digest = zlib.crc32(repr((case.path_parameters, case.media_type, case.body)).encode())
    params = case.path_parameters
    if _choice(digest, 0):
        params["org"] = ORG
    wanted = "salesforce" if "xml" in (case.media_type or "") else "hopin"
    other = {"salesforce": "hopin", "hopin": "salesforce"}[wanted]
    params["system"] = [params["system"], wanted, wanted, other][_choice(digest, 1)]
    if "suffix" in params and params["system"] == "salesforce" and _choice(digest, 2):
        params["suffix"] = live.token
    if params["system"] == "hopin" and case.headers and _choice(digest, 6):
        case.headers.pop(live.hopin["signature_header"], None)  # the session signs it
    body = case.body if isinstance(case.body, MutableMapping) else None
    notes = _mapping(_mapping(body, "Body"), "notifications")
    if notes is not None and _choice(digest, 3):
        notes["OrganizationId"] = live.org_id
    if body is not None and "signal" in body and _choice(digest, 4):
        body["occurredAt"] = dt.datetime.now(dt.UTC).isoformat()
        if _choice(digest, 5):
            body["organizationId"] = live.hopin["organization_id"]
            body["eventId"] = live.hopin["event_id"]


@SCHEMA.parametrize()
@settings(
    max_examples=50,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_live_server_answers_as_the_spec_says(case: schemathesis.Case, live: Live) -> None:
    steer(case, live)
    case.call_and_validate(base_url=live.url, session=live.session, checks=CHECKS)


# --- regressions found while writing the spec, and the documented answers fuzzing cannot reach


def test_an_empty_path_segment_is_a_plain_404_not_an_html_redirect(live: Live) -> None:
    # werkzeug merged the slashes and answered with an HTML 308 to the merged path, so an org
    # name with an encoded slash (or a sloppy URL) was redirected to another endpoint.
    for path in (f"/hooks/{ORG}//hopin", f"/hooks/{ORG}%2F/hopin", f"/hooks/{ORG}/hopin//x"):
        answer = requests.post(f"{live.url}{path}", data=b"{}", timeout=10, allow_redirects=False)
        assert answer.status_code == 404, path
        assert "Location" not in answer.headers
        assert answer.headers["Content-Type"].startswith("text/plain")
        NOTIFY.validate_response(answer)


def test_a_notification_naming_a_key_the_store_cannot_hold_is_a_400(live: Live) -> None:
    # A signed delivery whose id or data.id held a NUL, or whose data.id was longer than the
    # store's keys, was a 500 on PostgreSQL (after the sender's retries, a poison message).
    pending = len(live.engine.store.pending())
    longest = "R" * MAX_KEY
    unstorable = [
        _delivery(live, id="delivery\x00id"),
        _delivery(live, data={"id": "Reg\x00", "type": "registration"}),
        _delivery(live, data={"id": "R" * (MAX_KEY + 1), "type": "registration"}),
    ]
    for body in unstorable:
        answer = _post_signed(live, body)
        assert answer.status_code == 400, answer.content
        assert b"the state store cannot hold" in answer.content
        NOTIFY.validate_response(answer)
    too_long = _post_xml(live, _envelope(live.org_id, "0" * (MAX_KEY + 1)))
    assert too_long.status_code == 400 and b"cannot hold" in too_long.content
    assert len(live.engine.store.pending()) == pending
    # The longest key that fits is stored.
    fits = _post_signed(live, _delivery(live, data={"id": longest, "type": "registration"}))
    assert fits.status_code == 200
    assert longest in {row.entity for row in live.engine.store.pending()}


def test_a_running_engine_is_healthy_as_the_spec_says(make_env: Any) -> None:
    env = make_env(triggers=False, start=True)
    answer = requests.get(f"{env.server.url}/healthz", timeout=10)
    assert answer.status_code == 200 and answer.json()["ok"] is True
    SCHEMA["/healthz"]["GET"].validate_response(answer)
    env.engine.stop()
    stopped = requests.get(f"{env.server.url}/healthz", timeout=10)
    assert stopped.status_code == 503 and stopped.json()["running"] is False
    SCHEMA["/healthz"]["GET"].validate_response(stopped)
    for path in ("/livez", "/readyz"):
        SCHEMA[path]["GET"].validate_response(requests.get(f"{env.server.url}{path}", timeout=10))


def _delivery(live: Live, **changes: Any) -> dict[str, Any]:
    """A current delivery for the sandbox's organisation and event."""
    return {
        "id": uuid.uuid4().hex,
        "signal": "registrationCreated",
        "occurredAt": dt.datetime.now(dt.UTC).isoformat(),
        "organizationId": live.hopin["organization_id"],
        "eventId": live.hopin["event_id"],
        "data": {"id": "RegistrationFromTheTest01", "type": "registration", "attributes": {}},
        **changes,
    }


def _post_signed(live: Live, body: dict[str, Any]) -> requests.Response:
    """POST a delivery through the signing session, as Hopin would."""
    return live.session.post(
        f"{live.url}/hooks/{ORG}/hopin",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )


def _envelope(org_id: str, record_id: str) -> bytes:
    """An Outbound Message for one CampaignMember."""
    return (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org_id}</OrganizationId><Notification><Id>04l5g0000000000001</Id>"
        '<sObject xsi:type="sf:CampaignMember" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:Id>{record_id}</sf:Id></sObject></Notification></notifications>"
        "</soapenv:Body></soapenv:Envelope>"
    ).encode()


def _post_xml(live: Live, body: bytes) -> requests.Response:
    """POST an Outbound Message to the organisation's tokened endpoint."""
    url = f"{live.url}/hooks/{ORG}/salesforce/{live.token}"
    return requests.post(url, data=body, headers={"Content-Type": "text/xml"}, timeout=10)
