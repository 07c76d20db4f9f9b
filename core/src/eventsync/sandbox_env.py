"""A ready-made local environment: both sandboxes, wired to an eventsync endpoint.

Used by ``eventsync sandbox``, ``eventsync init --sandbox``, ``eventsync demo``, the
end-to-end tests and the benchmarks, so they all run the same set-up as a user would:

* the Salesforce sandbox with the custom fields the guide asks an admin to create
  (``Campaign.Hopin_Ticket_Code__c``, ``CampaignMember.Hopin_Magic_Link__c`` and
  ``Hopin_Status__c``) and, when an endpoint is given, an Outbound Message rule on
  CampaignMember pointing at ``<endpoint>/hooks/<org>/salesforce``;
* the Hopin sandbox (seeded organisation, event and ticket with its integration code), whose
  dataSubscription the Hopin plugin points at ``<endpoint>/hooks/<org>/hopin``.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

import attrs

from .config import Config, parse_config
from .hookspecs import SandboxHandle
from .plugins import Hooks

__all__ = [
    "TICKET_CODE_FIELD",
    "REGISTRATION_ID_FIELD",
    "LINK_FIELD",
    "STATUS_FIELD",
    "SandboxPair",
    "free_port",
    "salesforce_sandbox_config",
    "start_sandboxes",
    "org_config_data",
    "config_for",
]

TICKET_CODE_FIELD = "Hopin_Ticket_Code__c"
LINK_FIELD = "Hopin_Magic_Link__c"
STATUS_FIELD = "Hopin_Status__c"
#: An external-id field on Lead for upserts keyed on the Hopin registration id.
REGISTRATION_ID_FIELD = "Hopin_Registration_Id__c"
SYSTEMS = ("salesforce", "hopin")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for an endpoint started later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def salesforce_sandbox_config(
    endpoint: str | None, org: str, *, triggers: bool = True
) -> dict[str, Any]:
    """The Salesforce sandbox config: the guide's custom fields and an outbound message rule."""
    config: dict[str, Any] = {
        "custom_fields": {
            "Campaign": [
                {
                    "name": TICKET_CODE_FIELD,
                    "type": "string",
                    "length": 80,
                    "label": "Hopin ticket integration code",
                }
            ],
            "Lead": [
                {
                    "name": REGISTRATION_ID_FIELD,
                    "type": "string",
                    "length": 32,
                    "external_id": True,
                    "label": "Hopin registration id",
                }
            ],
            "CampaignMember": [
                {"name": LINK_FIELD, "type": "url", "length": 255, "label": "Hopin magic link"},
                {
                    "name": STATUS_FIELD,
                    "type": "picklist",
                    "values": ["Invited", "Registered"],
                    "label": "Hopin status",
                },
            ],
        },
    }
    if endpoint and triggers:
        config["outbound_messages"] = [
            {
                "name": "eventsync_campaign_member",
                "object": "CampaignMember",
                "endpoint_url": f"{endpoint}/hooks/{org}/salesforce",
                "fields": ["Id", "CampaignId", "Email"],
                "events": ["create", "update"],
            }
        ]
    return config


@attrs.define
class SandboxPair:
    """Both running sandboxes and the endpoint they notify."""

    salesforce: SandboxHandle
    hopin: SandboxHandle
    org: str
    endpoint: str | None

    def handles(self) -> dict[str, SandboxHandle]:
        """The handles by system name."""
        return {"salesforce": self.salesforce, "hopin": self.hopin}

    def options(self, system: str) -> dict[str, Any]:
        """Connection options for ``system`` (secrets named by ``*_env`` keys)."""
        handle = self.handles()[system]
        options = dict(handle.settings(self.org).options)
        if system == "hopin" and self.endpoint:
            options["webhook_url"] = f"{self.endpoint}/hooks/{self.org}/hopin"
        return options

    def secrets(self) -> dict[str, str]:
        """The sandboxes' secrets by environment-variable name."""
        env: dict[str, str] = {}
        for handle in self.handles().values():
            env.update(handle.settings(self.org).env or {})
        return env

    def info(self) -> dict[str, Any]:
        """One JSON-ready description: per system its info, options and secrets."""
        return {
            "org": self.org,
            "endpoint": self.endpoint,
            **{
                system: {
                    **dict(handle.info()),
                    "settings": self.options(system),
                    "secrets": dict(handle.settings(self.org).env or {}),
                }
                for system, handle in self.handles().items()
            },
        }

    def stop(self) -> None:
        """Stop both sandboxes."""
        for handle in self.handles().values():
            handle.stop()


def start_sandboxes(
    hooks: Hooks,
    *,
    org: str = "sandbox",
    endpoint: str | None = None,
    triggers: bool = True,
    salesforce_options: Mapping[str, Any] | None = None,
    salesforce_config: Mapping[str, Any] | None = None,
    hopin_options: Mapping[str, Any] | None = None,
) -> SandboxPair:
    """Start both sandboxes; ``endpoint`` is the base URL of the eventsync runner to notify.

    :param triggers: False starts them without outbound messages (pollers only).
    :param salesforce_config: more Salesforce sandbox config (validation rules, users ...),
        merged into the standard one.
    """
    sf_config = salesforce_sandbox_config(endpoint, org, triggers=triggers)
    for key, value in (salesforce_config or {}).items():
        if isinstance(value, Mapping) and isinstance(sf_config.get(key), Mapping):
            sf_config[key] = {**sf_config[key], **value}
        elif isinstance(value, list) and isinstance(sf_config.get(key), list):
            sf_config[key] = [*sf_config[key], *value]
        else:
            sf_config[key] = value
    sf_opts = {"config": sf_config, **(salesforce_options or {})}
    salesforce = hooks.start_sandbox("salesforce", sf_opts)
    try:
        hopin = hooks.start_sandbox("hopin", dict(hopin_options or {}))
    except BaseException:
        salesforce.stop()
        raise
    return SandboxPair(salesforce, hopin, org, endpoint if triggers else None)


def org_config_data(
    systems: Mapping[str, Mapping[str, Any]],
    *,
    flows: Mapping[str, Mapping[str, Any]] | None = None,
    plugins: tuple[str, ...] = ("salesforce", "hopin"),
    poll_interval: float = 2.0,
) -> dict[str, Any]:
    """The ``[orgs.<org>]`` table for the sandboxes' connection ``systems`` options, with all
    four flows by default."""
    default_flows: dict[str, Any] = {
        "export_registrations": {
            "target_object": "Lead",
            "match_key": "Email",
            "poll_interval": poll_interval,
            "fields": [
                {"target": "FirstName", "source": "firstName"},
                {
                    "target": "LastName",
                    "source": "lastName",
                    "transforms": ["strip", {"name": "truncate"}],
                },
                {"target": "Email", "source": "email", "transforms": ["strip", "lower"]},
                {
                    "target": "Company",
                    "source": "headline",
                    "transforms": [
                        {"name": "default", "value": "Hopin attendee"},
                        {"name": "truncate"},
                    ],
                },
                {"target": "Website", "source": "website"},
                {"target": "LeadSource", "constant": "Hopin"},
            ],
        },
        "import_registrations": {
            "source_object": "CampaignMember",
            "ticket_code_field": f"Campaign.{TICKET_CODE_FIELD}",
            "poll_interval": poll_interval,
            "fields": [
                {"target": "email", "source": "Email"},
                {"target": "firstName", "source": "FirstName"},
                {"target": "lastName", "source": "LastName"},
            ],
        },
        "magic_links": {
            "link_field": LINK_FIELD,
            "status_field": STATUS_FIELD,
            "poll_interval": poll_interval,
        },
        "attendance": {
            "target_object": "CampaignMember",
            "status_field": "Status",
            "attended_value": "Attended",
            "poll_interval": poll_interval,
        },
    }
    return {
        "plan": "enterprise",
        "plugins": list(plugins),
        "crm": "salesforce",
        "event_platform": "hopin",
        "systems": {system: dict(options) for system, options in systems.items()},
        "flows": dict(flows) if flows is not None else default_flows,
    }


def config_for(
    pair: SandboxPair,
    *,
    state: str,
    flows: Mapping[str, Mapping[str, Any]] | None = None,
    engine: Mapping[str, Any] | None = None,
    listen: str = "127.0.0.1:8080",
    poll_interval: float = 2.0,
    plugins: tuple[str, ...] = ("salesforce", "hopin"),
) -> Config:
    """A complete validated Config for the sandboxes (secrets via ``pair.secrets()``)."""
    data = {
        "engine": {"state": state, "listen": listen, **(engine or {})},
        "orgs": {
            pair.org: org_config_data(
                {s: pair.options(s) for s in SYSTEMS},
                flows=flows,
                poll_interval=poll_interval,
                plugins=plugins,
            )
        },
    }
    return parse_config(data, source="<sandbox>")


def sandbox_config_files(
    info: Mapping[str, Any],
    *,
    secrets_file: str,
    flows: Mapping[str, Mapping[str, Any]] | None = None,
    engine: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
    """The config file and secrets file (dotenv) for sandboxes described by ``info``
    (what ``SandboxPair.info()`` returned, e.g. read back from ``eventsync sandbox``'s file)."""
    import tomli_w

    org = info["org"]
    endpoint = info.get("endpoint") or "http://127.0.0.1:8080"
    listen = endpoint.split("://", 1)[-1].rstrip("/")
    data = {
        "engine": {
            "state": "eventsync-sandbox.sqlite",
            "listen": listen,
            "secrets_file": secrets_file,
            **(engine or {}),
        },
        "orgs": {org: org_config_data({s: info[s]["settings"] for s in SYSTEMS}, flows=flows)},
    }
    header = (
        "# eventsync configuration for the local sandboxes, written by `eventsync init --sandbox`.\n"
        f"# Secrets are in {secrets_file}. Check it: eventsync check; run it: eventsync run\n\n"
    )
    secrets = "".join(
        f"{name}={value}\n"
        for system in SYSTEMS
        for name, value in sorted(info[system]["secrets"].items())
    )
    return header + tomli_w.dumps(data), secrets
