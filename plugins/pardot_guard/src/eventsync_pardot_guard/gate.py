"""The runtime gate: people who opted out, or have not confirmed opt-in, are not synced.

Two shapes of record reach the gate:

* a CRM record (import flow, e.g. CampaignMember): the person is reached through the
  configured relationships (``Lead``, ``Contact``; ``""`` for the record itself), whose fields
  ``required_fields`` asked the flow to pull;
* an event-platform registration (export flow): the person is looked up in Salesforce by email
  (one query per lookup object).

A person is denied when any matching person record opted out; with Confirmed Opt-In, when no
matching person record has an accepted consent value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from eventsync.config import OrgConfig
from eventsync.models import Record, Verdict

from . import crm
from .options import PLUGIN, GuardOptions

__all__ = ["Person", "required_fields", "people_of_crm_record", "people_by_email", "decide"]


@attrs.frozen
class Person:
    """One person record as the gate sees it.

    :ivar where: how the reason names its fields: ``Lead`` (a relationship or object name).
    :ivar fields: the person's field values (opt-out and consent).
    :ivar id: the person record's id, when known.
    """

    where: str
    fields: Mapping[str, Any]
    id: str | None = None


def required_fields(options: GuardOptions, flow: str, obj: str) -> list[str]:
    """The paths the import flow must pull on ``obj`` for the gate."""
    if flow not in options.gate_flows:
        return []
    relationships = options.person_relationships.get(obj)
    if not relationships:
        return []
    wanted: list[str] = []
    for rel in relationships:
        prefix = f"{rel}." if rel else ""
        if rel:
            wanted.append(f"{rel}.Id")
        wanted.extend(prefix + f for f in options.person_fields())
    return wanted


def people_of_crm_record(options: GuardOptions, record: Record) -> list[Person] | None:
    """The people behind a CRM record; None when the object has no configured relationships."""
    relationships = options.person_relationships.get(record.object)
    if not relationships:
        return None
    people = []
    for rel in relationships:
        if not rel:
            people.append(
                Person(
                    record.object, {f: record.get(f) for f in options.person_fields()}, record.id
                )
            )
            continue
        person_id = record.get(f"{rel}.Id")
        if person_id is None:
            continue  # e.g. a CampaignMember of a Contact has no Lead
        people.append(
            Person(rel, {f: record.get(f"{rel}.{f}") for f in options.person_fields()}, person_id)
        )
    return people


def people_by_email(
    options: GuardOptions, conn: crm.SalesforceConnection, email: str
) -> list[Person]:
    """The Salesforce people (``lookup_objects``) whose Email equals ``email``."""
    people = []
    for obj in options.lookup_objects:
        for row in crm.rows(
            conn, ("Id", *options.person_fields()), obj, f"Email = {crm.literal(email)}", limit=50
        ):
            people.append(
                Person(obj, {f: row.get(f) for f in options.person_fields()}, row.get("Id"))
            )
    return people


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "empty"
    return repr(value)


def decide(
    options: GuardOptions, people: Sequence[Person], *, looked_up: str | None = None
) -> Verdict:
    """The verdict for the people behind one record.

    :param looked_up: the email the people were found by (export flow), for the reasons.
    """
    by = f", found by email {looked_up}" if looked_up else ""
    if options.check_opt_out:
        for person in people:
            if person.fields.get(options.opt_out_field) is True:
                ident = f" on {person.where} {person.id}" if looked_up and person.id else ""
                return Verdict(
                    False,
                    f"opted out of email ({person.where}.{options.opt_out_field} = true"
                    f"{ident}{by})",
                    PLUGIN,
                )
    if options.confirmed_opt_in and options.consent_field:
        field = options.consent_field
        accepted = ", ".join(_show(v) for v in options.consent_values)
        if not people:
            if looked_up and options.admit_unknown_people:
                return Verdict(
                    True,
                    f"no Salesforce person has the email {looked_up}; admitted "
                    f"(admit_unknown_people)",
                    PLUGIN,
                )
            return Verdict(
                False,
                f"has not confirmed opt-in: no Lead or Contact{by or ''} to read "
                f"{field} from (accepted: {accepted})",
                PLUGIN,
            )
        for person in people:
            if _accepted(person.fields.get(field), options.consent_values):
                return Verdict(
                    True,
                    f"confirmed opt-in ({person.where}.{field} = "
                    f"{_show(person.fields.get(field))})",
                    PLUGIN,
                )
        seen = "; ".join(f"{p.where}.{field} = {_show(p.fields.get(field))}" for p in people)
        return Verdict(
            False, f"has not confirmed opt-in ({seen}{by}; accepted: {accepted})", PLUGIN
        )
    return Verdict(True, "not opted out", PLUGIN)


def _accepted(value: Any, accepted: Sequence[Any]) -> bool:
    for candidate in accepted:
        if isinstance(candidate, bool):
            if value is candidate:
                return True
        elif isinstance(value, str) and value == candidate:
            return True
    return False


def admit(
    options: GuardOptions, flow: str, record: Record, org: OrgConfig, connections: Mapping[str, Any]
) -> Verdict | None:
    """The gate's answer for one record of ``flow``; None when the gate has no opinion."""
    if flow not in options.gate_flows or not options.person_fields():
        return None
    if record.system == org.crm:
        people = people_of_crm_record(options, record)
        return None if people is None else decide(options, people)
    if record.system == org.event_platform:
        email = record.get(options.registration_email_field)
        if not isinstance(email, str) or not email.strip():
            return None
        conn = crm.salesforce_connection(org, connections)
        if conn is None:
            return None
        email = email.strip()
        return decide(options, people_by_email(options, conn, email), looked_up=email)
    return None
