"""Property-based tests of the outbound-message parser (``eventsync_salesforce.outbound.parse``).

Whatever arrives at the endpoint (any method, headers, URL token and body: bytes, XML-like
text, real envelopes with parts missing or changed), ``parse`` returns a Notification or raises
BadNotification with a 4xx status; nothing else may escape to the web server. A real envelope
with the right token for the configured org reads back as exactly the notifications it carries;
with any other token, or from any other org (letter case included), it is a 403. No server is
needed: the settings are built as the sandbox builds them, with their own ``env``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from eventsync.errors import BadNotification
from eventsync.models import HttpRequest, Notification, SystemSettings
from eventsync_salesforce import outbound
from eventsync_salesforce.orgid import same_org
from hypothesis import example, given, settings
from hypothesis import strategies as st

ORG_ID = "00Do0000000e0vQEAQ"
TOKEN = "outbound-token-for-property-tests"
#: With a token (as `eventsync init --sandbox` configures), and without (the plain route).
SETTINGS = SystemSettings(
    "salesforce",
    "acme",
    options={"org_id": ORG_ID, "grant": "jwt", "outbound_token_env": "SF_OUTBOUND_TOKEN"},
    env={"SF_OUTBOUND_TOKEN": TOKEN},
)
PLAIN = SystemSettings("salesforce", "acme", options={"org_id": ORG_ID, "grant": "jwt"}, env={})
SOAPENV, OUTBOUND, SOBJECT, XSI = (
    outbound.SOAPENV,
    outbound.OUTBOUND,
    outbound.SOBJECT,
    outbound.XSI,
)


def parse(request: HttpRequest, settings: SystemSettings = SETTINGS) -> Notification | None:
    """``parse``, with the property checked: a Notification, or BadNotification with a 4xx
    (returned as None). Any other exception fails the test."""
    try:
        return outbound.parse(request, settings)
    except BadNotification as exc:
        assert 400 <= exc.status < 500 and exc.message
        return None


def post(body: bytes, suffix: str = TOKEN) -> HttpRequest:
    """A POST of ``body`` as Salesforce sends it, to the URL ending in ``suffix``."""
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    return HttpRequest("POST", f"/hooks/acme/salesforce/{suffix}", headers, body, suffix=suffix)


# --- envelopes ------------------------------------------------------------------------------

ids = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=18
)
names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,15}", fullmatch=True)
#: Text XML 1.0 can carry, less CR (which XML parsers read as LF).
xml_text = st.text(
    st.characters(min_codepoint=0x20, exclude_categories=["Cs"], exclude_characters="\ufffe\uffff")
    | st.sampled_from("\t\n"),
    max_size=20,
)
#: A notification: its id, object type and fields (None is written xsi:nil).
notes = st.tuples(
    ids,
    names,
    ids,
    st.dictionaries(names.filter(lambda n: n != "Id"), st.none() | xml_text, max_size=4),
)


def envelope(org_id: str, items: list[tuple[str, str, str, dict[str, str | None]]]) -> bytes:
    """An outbound message as Salesforce writes it (see the SOAP API's reference envelope)."""
    root = ET.Element(f"{{{SOAPENV}}}Envelope")
    body = ET.SubElement(ET.SubElement(root, f"{{{SOAPENV}}}Body"), f"{{{OUTBOUND}}}notifications")
    ET.SubElement(body, f"{{{OUTBOUND}}}OrganizationId").text = org_id
    ET.SubElement(body, f"{{{OUTBOUND}}}ActionId").text = "04k1N0000008pXOQAY"
    for note_id, object_type, record_id, fields in items:
        note = ET.SubElement(body, f"{{{OUTBOUND}}}Notification")
        ET.SubElement(note, f"{{{OUTBOUND}}}Id").text = note_id
        sobject = ET.SubElement(
            note, f"{{{OUTBOUND}}}sObject", {f"{{{XSI}}}type": f"sf:{object_type}"}
        )
        for name, value in {"Id": record_id, **fields}.items():
            element = ET.SubElement(sobject, f"{{{SOBJECT}}}{name}")
            if value is None:
                element.set(f"{{{XSI}}}nil", "true")
            else:
                element.text = value
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A real envelope with a slice of it cut, doubled or replaced by random text."""
    whole = envelope(
        draw(st.sampled_from([ORG_ID, ORG_ID[:15], "00D000000000001AAA", ""])),
        draw(st.lists(notes, max_size=3)),
    )
    start = draw(st.integers(0, len(whole)))
    end = draw(st.integers(start, min(len(whole), start + 40)))
    cut = draw(st.sampled_from(["cut", "double", "replace"]))
    middle = {"cut": b"", "double": whole[start:end] * 2, "replace": draw(st.binary(max_size=8))}[
        cut
    ]
    return whole[:start] + middle + whole[end:]


bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    st.lists(
        st.sampled_from(
            ["<", ">", "/", "a", "soapenv:", "=", '"', "&", ";", "<!DOCTYPE x>", "]]>"]
        ),
        max_size=30,
    ).map(lambda parts: "".join(parts).encode()),
    damaged(),
    # deep nesting: expat does not recurse, but the parser must not either
    st.integers(1, 20_000).map(lambda depth: b"<a>" * depth + b"</a>" * depth),
)
headers = st.dictionaries(
    st.sampled_from(["Content-Type", "content-type", "CONTENT-TYPE", "SOAPAction", "X-Other"])
    | st.text(max_size=8),
    st.sampled_from(
        ["text/xml", "text/xml; charset=utf-8", "application/soap+xml", " TEXT/XML ;x", ""]
    )
    | st.text(max_size=12),
    max_size=3,
)
methods = st.sampled_from(["POST", "post", "GET", "PUT", ""]) | st.text(max_size=6)


# --- properties -----------------------------------------------------------------------------


suffixes = st.one_of(
    st.just(TOKEN), st.just(""), st.sampled_from([TOKEN[:-1], TOKEN.upper()]), st.text(max_size=40)
)


@settings(max_examples=300)
@given(methods, headers, suffixes, bodies, st.sampled_from([SETTINGS, PLAIN]))
@example("POST", {"Content-Type": "text/xml"}, TOKEN, b"<a>" * 50_000 + b"</a>" * 50_000, SETTINGS)
def test_any_request_gives_a_notification_or_a_4xx(
    method: str, head: dict[str, str], suffix: str, body: bytes, config: SystemSettings
) -> None:
    parse(
        HttpRequest(method, f"/hooks/acme/salesforce/{suffix}", head, body, suffix=suffix), config
    )


@settings(max_examples=500)
@given(bodies)
def test_any_body_posted_with_the_token_gives_a_notification_or_a_4xx(body: bytes) -> None:
    parse(post(body))


@settings(max_examples=200)
@given(st.lists(notes, min_size=1, max_size=4), st.sampled_from([ORG_ID, ORG_ID[:15]]))
def test_an_envelope_for_the_org_reads_back_as_its_notifications(
    items: list[tuple[str, str, str, dict[str, str | None]]], org_id: str
) -> None:
    note = parse(post(envelope(org_id, items)))
    assert note is not None
    assert note.dedupe_ids == tuple(note_id for note_id, *_ in items)
    assert [(e.object, e.id, dict(e.fields)) for e in note.entities] == [
        (object_type, record_id, {"Id": record_id, **fields})
        for _, object_type, record_id, fields in items
    ]
    assert note.response.status == 200 and b"<Ack>true</Ack>" in note.response.body


@settings(max_examples=80)
@given(
    st.lists(notes, min_size=1, max_size=2),
    # another id, or this one with a letter's case changed (another org, for Salesforce)
    ids.filter(lambda i: not same_org(i, ORG_ID))
    | st.sampled_from([ORG_ID.lower(), ORG_ID.upper(), ORG_ID[:15].swapcase(), ""]),
)
def test_an_envelope_from_another_org_is_refused(
    items: list[tuple[str, str, str, dict[str, str | None]]], org_id: str
) -> None:
    with pytest.raises(BadNotification) as refused:
        outbound.parse(post(envelope(org_id, items)), SETTINGS)
    assert refused.value.status == 403


@settings(max_examples=80)
@given(st.lists(notes, min_size=1, max_size=2), suffixes.filter(lambda s: s != TOKEN))
def test_an_envelope_without_the_token_is_refused(
    items: list[tuple[str, str, str, dict[str, str | None]]], suffix: str
) -> None:
    with pytest.raises(BadNotification) as refused:
        outbound.parse(post(envelope(ORG_ID, items), suffix), SETTINGS)
    assert refused.value.status == 403


#: What an XML declaration may name as its encoding.
encodings = st.sampled_from(
    [
        "UTF-8",
        "utf-8",
        "ISO-8859-1",
        "US-ASCII",
        "cp932",
        "utf-32",
        "big5",
        "bogus",
        "rot13",
        "idna",
        "undefined",
    ]
) | st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=10)


@settings(max_examples=100)
@given(encodings)
@example("bogus")
@example("cp932")
@example("idna")
def test_an_xml_declaration_with_any_encoding_gives_a_notification_or_a_4xx(encoding: str) -> None:
    body = envelope(ORG_ID, [("04l1N00000HVEMpQAP", "Lead", "00Q1N00000bS2eOUAS", {})])
    try:
        parse(post(body.replace(b'encoding="UTF-8"', f'encoding="{encoding}"'.encode(), 1)))
    except BadNotification as exc:
        assert 400 <= exc.status < 500
