"""Wire <-> Record conversion, through this module's private cattrs converter.

JSON:API documents are structured into ``Resource`` / ``Page`` records first, so a malformed
answer fails in one place with a clear message; then each object type becomes a ``Record``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs
from eventsync.errors import FatalError
from eventsync.models import Record, get_path

from .options import HopinOptions

SYSTEM = "hopin"
TIMESTAMP_FIELDS = (
    "createdAt",
    "updatedAt",
    "userUpdatedAt",
    "acceptedAt",
    "timeStart",
    "timeEnd",
    "joinedAt",
    "leftAt",
    "checkedInAt",
    "badgePrintedAt",
)


@attrs.frozen
class Resource:
    """A JSON:API resource object."""

    id: str
    type: str
    attributes: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Links:
    """A list document's links; ``next`` is absolute, null or absent on the last page."""

    next: str | None = None


@attrs.frozen
class Page:
    """One page of a list."""

    data: tuple[Resource, ...]
    links: Links = Links()
    #: ``meta.count``: how many records the whole list holds, when the answer says.
    count: int | None = None


_converter = cattrs.Converter()


def parse_resource(body: Any) -> Resource:
    """``{"data": {...}}`` -> Resource; FatalError when it is not a JSON:API document."""
    try:
        return _converter.structure(body["data"], Resource)
    except (KeyError, TypeError, cattrs.BaseValidationError) as exc:
        raise FatalError(
            "BAD_BODY", f"not a JSON:API resource document: {str(body)[:200]}", system=SYSTEM
        ) from exc


def parse_list(body: Any) -> Page:
    """``{"data": [...], "links": {"next": ...}}`` -> Page."""
    try:
        links = body.get("links") or {}
        count = (body.get("meta") or {}).get("count")
        return Page(
            data=tuple(_converter.structure(item, Resource) for item in body["data"]),
            links=Links(next=links.get("next") or None),
            count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        )
    except (AttributeError, KeyError, TypeError, cattrs.BaseValidationError) as exc:
        raise FatalError(
            "BAD_BODY", f"not a JSON:API list document: {str(body)[:200]}", system=SYSTEM
        ) from exc


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO-8601 wire timestamp as an aware datetime (None stays None)."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def wire_time(value: dt.datetime) -> str:
    """An aware datetime as the wire's ISO-8601 UTC with ``Z``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fields(attributes: Mapping[str, Any]) -> dict[str, Any]:
    fields = dict(attributes)
    for name in TIMESTAMP_FIELDS:
        if isinstance(fields.get(name), str):
            with contextlib.suppress(ValueError):
                fields[name] = parse_time(fields[name])
    return fields


def ticket_code(attributes: Mapping[str, Any], options: HopinOptions) -> str | None:
    """The ticket's integration code: ``ticket_code_attribute`` when configured and present,
    else the part after the last ``=`` of the registration URL (as the Hopin guide says)."""
    if options.ticket_code_attribute and attributes.get(options.ticket_code_attribute):
        return str(attributes[options.ticket_code_attribute])
    url = attributes.get(options.ticket_url_attribute)
    if isinstance(url, str) and "=" in url:
        return url.rsplit("=", 1)[1] or None
    return None


def _derive_registration_fields(
    fields: dict[str, Any], attributes: Mapping[str, Any], options: HopinOptions
) -> None:
    """UTM parameters, referrer, channel and check-in: read from the configured wire paths
    (``registration_attributes``), so a registration always has these fields, None when absent."""
    paths, onsite = _derivations(options)
    for field, path in paths:
        value = get_path(attributes, path)
        if field in TIMESTAMP_FIELDS and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = parse_time(value)
        fields[field] = value if value != "" else None
    channel = fields.get("channel")
    fields["onsite"] = isinstance(channel, str) and channel.lower() in onsite


#: ``_derivations`` of the options seen, by identity (kept with them).
_derived: dict[int, tuple[HopinOptions, tuple[tuple[tuple[str, str], ...], frozenset[str]]]] = {}


def _derivations(
    options: HopinOptions,
) -> tuple[tuple[tuple[str, str], ...], frozenset[str]]:
    """The derived registration fields' wire paths and the on-site channel values (lower case)
    of ``options``, worked out once per options object: every delivery carries a registration."""
    hit = _derived.get(id(options))
    if hit is None or hit[0] is not options:
        if len(_derived) >= 256:
            _derived.clear()
        work = (
            tuple(options.registration_paths().items()),
            frozenset(v.lower() for v in options.onsite_channel_values),
        )
        hit = _derived[id(options)] = (options, work)
    return hit[1]


def to_record(obj: str, resource: Resource, options: HopinOptions) -> Record:
    """A wire resource as a Record of object ``obj`` (registration, magicLink, ticket ...)."""
    fields = _fields(resource.attributes)
    if obj == "registration":
        answers = fields.get("answers") or []
        fields["answerList"] = list(answers) if isinstance(answers, list) else []
        fields["answers"] = {
            str(a.get("questionId")): a.get("answer")
            for a in fields["answerList"]
            if isinstance(a, Mapping)
        }
        if fields.get("refunded"):
            fields["status"] = "refunded"
        else:
            fields.setdefault("status", "registered")
        _derive_registration_fields(fields, resource.attributes, options)
    elif obj == "magicLink":
        status = resource.attributes.get(options.magic_link_status_attribute)
        fields["status"] = str(status).lower() if status is not None else None
    elif obj == "ticket":
        fields["integrationCode"] = ticket_code(resource.attributes, options)
    modified = fields.get("updatedAt") if isinstance(fields.get("updatedAt"), dt.datetime) else None
    return Record(system=SYSTEM, object=obj, id=resource.id, fields=fields, modified_at=modified)
