"""``eventsync demo``: the Hopin guide's own test procedure, end to end, against the sandboxes.

1. A Hopin ticket carries its integration code.
2. A Salesforce Campaign is created carrying that code.
3. A CampaignMember is created in Salesforce.
4. The invitation appears among Hopin's magic links.
5. The magic link is written back to the CampaignMember (status Invited).
6. Someone registers on Hopin directly; the registration is exported to a Lead.
7. The invitee accepts the magic link; the CampaignMember's status becomes Registered.
8. The invitee attends; the CampaignMember's Status becomes Attended.

Each step waits for its effect (real time: outbound messages and Hopin deliveries into the
embedded engine's endpoints) and reports its latency; the demo exits 0 only if every step
happened.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import requests

from .engine import Engine
from .models import Filter, PullRequest, PushItem, PushRequest
from .plugins import Hooks, make_plugin_manager
from .sandbox_env import (
    LINK_FIELD,
    STATUS_FIELD,
    TICKET_CODE_FIELD,
    config_for,
    free_port,
    start_sandboxes,
)
from .server import Server
from .waiting import wait_until

__all__ = ["Step", "run_demo"]


@attrs.frozen
class Step:
    """One step of the demo and how it went."""

    number: int
    title: str
    ok: bool
    seconds: float
    detail: str = ""


class _Failed(Exception):
    pass


def run_demo(
    report: Callable[[Step], None], *, timeout: float = 30.0, workdir: str | None = None
) -> list[Step]:
    """Run the demo; ``report`` is called after each step. Returns every step attempted."""
    hooks = Hooks(make_plugin_manager(environ={}))
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    pair = start_sandboxes(hooks, org="demo", endpoint=endpoint)
    tmp = tempfile.TemporaryDirectory(prefix="eventsync-demo-") if workdir is None else None
    state = str(Path(workdir or tmp.name) / "demo-state.sqlite")  # type: ignore[union-attr]
    config = config_for(pair, state=state, listen=f"127.0.0.1:{port}")
    engine = Engine(config, hooks=hooks, env=pair.secrets())
    server = Server(engine, port=port).start()
    engine.start()
    steps: list[Step] = []
    hopin_info = pair.hopin.info()
    admin = hopin_info["admin_url"]
    http = requests.Session()

    def step(title: str, action: Callable[[], str]) -> None:
        started = time.monotonic()
        try:
            detail = action()
            result = Step(len(steps) + 1, title, True, time.monotonic() - started, detail)
        except Exception as exc:  # the demo reports any failure as a failed step
            result = Step(
                len(steps) + 1,
                title,
                False,
                time.monotonic() - started,
                f"{type(exc).__name__}: {exc}",
            )
        steps.append(result)
        report(result)
        if not result.ok:
            raise _Failed(result.detail)

    crm = engine.connection("demo", "crm")
    platform = engine.connection("demo", "platform")
    state_of: dict[str, Any] = {}

    def push_one(obj: str, fields: dict[str, Any]) -> str:
        [result] = hooks.push(crm, PushRequest(obj, "insert", (PushItem(obj, fields),)))
        if not result.ok:
            raise _Failed(f"{obj} insert failed: {result.error}")
        return str(result.id)

    def crm_member() -> Any:
        rows = list(
            hooks.pull(
                crm,
                PullRequest(
                    "CampaignMember",
                    ids=(state_of["member"],),
                    fields=("Id", "Status", LINK_FIELD, STATUS_FIELD),
                ),
            )
        )
        return rows[0] if rows else None

    def ticket_code() -> str:
        tickets = [
            t for t in hooks.pull(platform, PullRequest("ticket")) if t.get("integrationCode")
        ]
        if not tickets:
            raise _Failed("the Hopin event has no ticket with an integration code")
        state_of["code"] = tickets[0].get("integrationCode")
        state_of["ticket"] = tickets[0].id
        return f"ticket {tickets[0].id} has integration code {state_of['code']!r}"

    def campaign() -> str:
        state_of["campaign"] = push_one(
            "Campaign",
            {"Name": "Hopin demo event", TICKET_CODE_FIELD: state_of["code"], "IsActive": True},
        )
        push_one(
            "CampaignMemberStatus",
            {"CampaignId": state_of["campaign"], "Label": "Attended", "HasResponded": True},
        )
        return f"Campaign {state_of['campaign']} with {TICKET_CODE_FIELD} = {state_of['code']!r}"

    def member() -> str:
        lead = push_one(
            "Lead",
            {
                "FirstName": "Ada",
                "LastName": "Lovelace",
                "Company": "Analytical Engines",
                "Email": "ada@example.com",
            },
        )
        state_of["member"] = push_one(
            "CampaignMember", {"CampaignId": state_of["campaign"], "LeadId": lead}
        )
        return f"CampaignMember {state_of['member']} for Lead {lead}"

    def invitation() -> str:
        def probe() -> Any:
            links = list(
                hooks.pull(
                    platform,
                    PullRequest("magicLink", filters=(Filter("email", "=", "ada@example.com"),)),
                )
            )
            return links[0] if links else None

        link = wait_until("the magic link in Hopin", probe, timeout)
        state_of["link"] = link.id
        return f"magic link {link.id}: {link.get('magicLink')}"

    def written_back() -> str:
        def linked() -> Any:
            member = crm_member()
            return member if member is not None and member.get(LINK_FIELD) else None

        row = wait_until("the magic link on the CampaignMember", linked, timeout)
        return f"{LINK_FIELD} = {row.get(LINK_FIELD)}, {STATUS_FIELD} = {row.get(STATUS_FIELD)}"

    def exported() -> str:
        http.post(
            f"{admin}/events/{hopin_info['event_id']}/registrations",
            json={
                "ticketId": state_of["ticket"],
                "email": "grace@example.com",
                "firstName": "Grace",
                "lastName": "Hopper",
                "headline": "Rear Admiral, US Navy",
                "website": "https://example.com/grace",
            },
            timeout=10,
        ).raise_for_status()

        def probe() -> Any:
            leads = list(
                hooks.pull(
                    crm,
                    PullRequest(
                        "Lead",
                        fields=("Id", "Email", "Company"),
                        filters=(Filter("Email", "=", "grace@example.com"),),
                    ),
                )
            )
            return leads[0] if leads else None

        lead = wait_until("the exported Lead", probe, timeout)
        return f"Lead {lead.id} (Company = {lead.get('Company')!r})"

    def accepted() -> str:
        http.post(f"{admin}/magicLinks/{state_of['link']}/accept", timeout=10).raise_for_status()
        row = wait_until(
            "status Registered",
            lambda: (m := crm_member()) and m.get(STATUS_FIELD) == "Registered" and m,
            timeout,
        )
        return f"{STATUS_FIELD} = {row.get(STATUS_FIELD)}"

    def attended() -> str:
        http.post(
            f"{admin}/attendance",
            json={"email": "ada@example.com", "durationSeconds": 2700},
            timeout=10,
        ).raise_for_status()
        row = wait_until(
            "Status Attended",
            lambda: (m := crm_member()) and m.get("Status") == "Attended" and m,
            timeout,
        )
        return f"Status = {row.get('Status')}"

    try:
        step("Hopin ticket carries an integration code", ticket_code)
        step("Salesforce Campaign created carrying that code", campaign)
        step("CampaignMember created in Salesforce", member)
        step("invitation appears among Hopin's magic links", invitation)
        step("magic link written back to the CampaignMember", written_back)
        step("Hopin registration exported to a Salesforce Lead", exported)
        step("invitee accepts: status Registered in Salesforce", accepted)
        step("invitee attends: CampaignMember Status Attended", attended)
    except _Failed:
        pass
    finally:
        server.stop()
        engine.close()
        pair.stop()
        if tmp is not None:
            tmp.cleanup()
    return steps
