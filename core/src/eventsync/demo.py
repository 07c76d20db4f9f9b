"""``eventsync demo``: the integration guide's own test procedure, end to end, against sandboxes.

With the Salesforce and Hopin plugins (the systems' plugins supply the operations and titles
through ``demo_crm`` and ``demo_platform``; core only orders them and checks the flows'
effects on the fields the flow configuration names):

1. A Hopin ticket carries its integration code.
2. A Salesforce Campaign is created carrying that code.
3. A CampaignMember is created in Salesforce.
4. The invitation appears among Hopin's magic links.
5. The magic link is written back to the CampaignMember (status Invited).
6. Someone registers on Hopin directly; the registration is exported to a Lead.
7. The invitee accepts the magic link; the CampaignMember's status becomes Registered.
8. The invitee attends; the CampaignMember's Status becomes Attended.

Steps 2 and 3 are the CRM's ``invite`` steps: another CRM may take one step or three. Each
step waits for its effect (real time: notifications into the embedded engine's endpoints) and
reports its latency; the demo succeeds only if every step happened.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs

from .config import FLOW_NAMES, FlowsConfig
from .engine import Engine
from .errors import ConfigurationError
from .hookspecs import CrmDemo, PlatformDemo
from .plugins import Hooks, make_plugin_manager
from .sandbox_env import DemoPerson, config_for, free_port, start_sandboxes
from .server import Server
from .waiting import wait_until

__all__ = ["Step", "INVITEE", "REGISTRANT", "run_demo"]

T = TypeVar("T")
ORG = "demo"
#: The person the CRM invites (steps 2-5, 7, 8).
INVITEE = DemoPerson("Ada", "Lovelace", "ada@example.com", company="Analytical Engines")
#: The person who registers on the event platform directly (step 6).
REGISTRANT = DemoPerson(
    "Grace",
    "Hopper",
    "grace@example.com",
    company="Rear Admiral, US Navy",
    website="https://example.com/grace",
)
# Titles for the keys a system's demo operations leave out.
DEFAULT_TITLES: Mapping[str, str] = {
    "ticket_code": "the event's ticket carries an integration code",
    "invitation": "the invitation appears on the event platform",
    "link_written": "the invitation link is written back to the invitee",
    "register": "someone registers on the event platform",
    "exported": "exported to the CRM",
    "accept": "the invitee accepts the invitation",
    "registered": "the invitee is registered in the CRM",
    "attend": "the invitee attends",
    "attended": "the invitee is marked attended in the CRM",
}


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


def _wait_for(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    """``wait_until`` for a probe that answers None until the effect is visible."""
    found = wait_until(what, probe, timeout)
    assert found is not None  # wait_until returns truthy values only
    return found


def _title(titles: Mapping[str, str], key: str) -> str:
    return titles.get(key) or DEFAULT_TITLES[key]


def _demo_flows(flows: FlowsConfig) -> FlowsConfig:
    """The flows, checked to hold everything the demo watches."""
    missing = [name for name in FLOW_NAMES if getattr(flows, name) is None]
    if flows.magic_links is not None and flows.magic_links.status_field is None:
        missing.append("magic_links.status_field")
    if missing:
        raise ConfigurationError(
            [f"the sandboxes' flow configuration lacks {m}" for m in missing],
            heading="the demo needs every flow",
        )
    return flows


def run_demo(
    report: Callable[[Step], None],
    *,
    timeout: float = 30.0,
    workdir: str | None = None,
    crm: str | None = None,
    platform: str | None = None,
    hooks: Hooks | None = None,
) -> list[Step]:
    """Run the demo; ``report`` is called after each step. Returns every step attempted.

    :param crm: the CRM system (default: the only one installed with a sandbox).
    :param platform: the event-platform system (default: the only one installed).
    :param hooks: the plugins to use (default: every installed plugin, ignoring the allow and
        block lists of the environment).
    :raises ConfigurationError: the systems cannot be chosen, or their plugins do not offer
        the demo's operations or every flow.
    """
    hooks = hooks or Hooks(make_plugin_manager(environ={}))
    port = free_port()
    steps: list[Step] = []
    with contextlib.ExitStack() as stack:
        pair = start_sandboxes(
            hooks, crm=crm, platform=platform, org=ORG, endpoint=f"http://127.0.0.1:{port}"
        )
        stack.callback(pair.stop)
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="eventsync-demo-"))
        state = str(Path(workdir) / "demo-state.sqlite")
        config = config_for(pair, state=state, listen=f"127.0.0.1:{port}")
        flows = _demo_flows(config.org(ORG).flows)
        engine = Engine(config, hooks=hooks, env=pair.secrets())
        stack.callback(engine.close)
        crm_ops: CrmDemo | None = hooks.caller("demo_crm")(
            system=pair.crm.system, handle=pair.crm, connection=engine.connection(ORG, "crm")
        )
        platform_ops: PlatformDemo | None = hooks.caller("demo_platform")(
            system=pair.platform.system,
            handle=pair.platform,
            connection=engine.connection(ORG, "platform"),
        )
        absent = [
            f"the plugin of {system!r} offers no demo operations ({hook})"
            for system, hook, ops in (
                (pair.crm.system, "demo_crm", crm_ops),
                (pair.platform.system, "demo_platform", platform_ops),
            )
            if ops is None
        ]
        if crm_ops is None or platform_ops is None:
            raise ConfigurationError(absent, heading="demo operations")
        server = Server(engine, port=port).start()
        stack.callback(server.stop)
        engine.start()
        with contextlib.suppress(_Failed):
            _procedure(crm_ops, platform_ops, flows, steps, report, timeout)
    return steps


def _procedure(
    crm: CrmDemo,
    platform: PlatformDemo,
    flows: FlowsConfig,
    steps: list[Step],
    report: Callable[[Step], None],
    timeout: float,
) -> None:
    """The guide's steps in order; raises _Failed at the first step that did not happen."""
    links, attendance = flows.magic_links, flows.attendance
    assert links is not None and attendance is not None  # checked by _demo_flows
    link_field, status_field = links.link_field, str(links.status_field)

    def step(title: str, action: Callable[[], str]) -> None:
        started = time.monotonic()
        try:
            detail = action()
            result = Step(len(steps) + 1, title, True, time.monotonic() - started, detail)
        except Exception as exc:  # the demo reports any failure as a failed step
            detail = f"{type(exc).__name__}: {exc}"
            result = Step(len(steps) + 1, title, False, time.monotonic() - started, detail)
        steps.append(result)
        report(result)
        if not result.ok:
            raise _Failed(result.detail)

    def invitee_where(what: str, fields: Sequence[str], ok: Callable[[Any], bool]) -> str:
        def probe() -> Mapping[str, Any] | None:
            row = crm.invitee(fields)
            return row if row is not None and ok(row) else None

        row = _wait_for(what, probe, timeout)
        return ", ".join(f"{field} = {row.get(field)}" for field in fields)

    code: list[str] = []

    def ticket_code() -> str:
        value, detail = platform.ticket_code()
        code.append(value)
        return detail

    step(_title(platform.titles, "ticket_code"), ticket_code)
    for action in crm.invite(code[0], INVITEE):
        step(action.title, action.run)
    step(
        _title(platform.titles, "invitation"),
        lambda: _wait_for(
            "the invitation on the event platform",
            lambda: platform.invitation(INVITEE.email),
            timeout,
        ),
    )
    step(
        _title(crm.titles, "link_written"),
        lambda: invitee_where(
            f"{link_field} on the invitee",
            (link_field, status_field),
            lambda row: bool(row.get(link_field)),
        ),
    )

    def exported() -> str:
        registered = platform.register(REGISTRANT)
        found = _wait_for(
            "the exported person in the CRM", lambda: crm.find_person(REGISTRANT.email), timeout
        )
        return f"{registered}; {found}"

    step(f"{_title(platform.titles, 'register')}: {_title(crm.titles, 'exported')}", exported)

    def accepted() -> str:
        platform.accept(INVITEE.email)
        value = links.registered_value
        return invitee_where(
            f"{status_field} {value}", (status_field,), lambda row: row.get(status_field) == value
        )

    step(f"{_title(platform.titles, 'accept')}: {_title(crm.titles, 'registered')}", accepted)

    def attended() -> str:
        platform.attend(INVITEE.email)
        field, value = attendance.status_field, attendance.attended_value
        return invitee_where(f"{field} {value}", (field,), lambda row: row.get(field) == value)

    step(f"{_title(platform.titles, 'attend')}: {_title(crm.titles, 'attended')}", attended)
