"""The emulated org: store, metadata from the config, users, sessions, jobs, outbound rules."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from typing import Any

import attrs

from . import config as config_mod
from . import ids, metadata, oauth, outbound, soql, webflow
from .bulk import BulkJobs
from .faults import Counters, Faults
from .latency import from_options as latency_from_options
from .locks import ParentLocks
from .store import Store, ValidationRule, WriteContext

ADMIN_USERNAME = "admin@sandbox.example"
INTEGRATION_USERNAME = "integration@sandbox.example"
#: The External Client App every sandbox has, for the setup console and the demo: its
#: callback is the console's, on any loopback port.
CONSOLE_APP_NAME = "eventsync console"
CONSOLE_CLIENT_ID = "3MVG9sandboxEventsyncConsole"
CONSOLE_CALLBACKS = tuple(
    f"{scheme}://{host}/console/oauth/callback"
    for scheme in ("http", "https")
    for host in ("127.0.0.1", "localhost")
)
MAX_CURSORS = 1000


@attrs.define
class Cursor:
    """The rest of a query result, served by queryMore."""

    rows: list[dict[str, Any]]
    total: int
    position: int


class Org:
    """Everything one emulated org holds."""

    def __init__(self, options: Mapping[str, Any], base_url: str, certificate_pem: bytes) -> None:
        self.options = options
        self.base_url = base_url
        self.version = str(options.get("api_version", metadata.API_VERSION))
        self.config = config_mod.load(options.get("config"))
        self.org_id = self.config.org_id or ids.case_safe("00D5g00000" + "SBX01")
        self.batch_size = int(options.get("query_batch_size", 2000))
        self.store = Store(self._objects(), self._rules())
        self.sessions = oauth.Sessions(self.org_id, float(options.get("session_ttl", 7200)))
        self.faults = Faults(seed=options.get("fault_seed"))
        self.latency = latency_from_options(options)
        self.locks = ParentLocks(options)
        self.counters = Counters(int(options.get("daily_api_limit", 100000)))
        self.bulk = BulkJobs(self.store, self.version)
        self.cursors: dict[str, Cursor] = {}
        self.cursor_lock = threading.Lock()
        self.passwords: dict[str, str] = {}
        self.logins: dict[str, oauth.Login] = {}
        self.usernames: dict[str, str] = {}
        state_file = options.get("state_file")
        loaded = bool(state_file) and self.store.load(str(state_file))
        self._seed_users(reuse=loaded)
        self.app = oauth.ConnectedApp(
            client_id=str(options.get("client_id") or "3MVG9sandbox" + secrets.token_hex(12)),
            client_secret=str(options.get("client_secret") or secrets.token_hex(16)),
            certificate_pem=certificate_pem,
            run_as=INTEGRATION_USERNAME,
            rotate_refresh_tokens=bool(options.get("rotate_refresh_tokens", False)),
        )
        self.webflow = webflow.WebFlow(
            self.logins, float(options.get("oauth_code_ttl", webflow.DEFAULT_CODE_TTL))
        )
        self._register_apps(options)
        self.tokens = oauth.TokenEndpoint(
            self.app, self.logins, self.sessions, base_url, self.org_id, self.webflow
        )
        self.refresh_token = self.sessions.issue_refresh(
            self.user_id(INTEGRATION_USERNAME), self.app.client_id
        )
        self.outbound = outbound.Outbound(
            self.store,
            self.org_id,
            base_url,
            has_permission=self.has_permission,
            session_for=self.sessions.issue,
            backoff=float(options.get("outbound_backoff", 1.0)),
            backoff_cap=float(options.get("outbound_backoff_cap", 7200.0)),
            max_age=float(options.get("outbound_max_age", 86400.0)),
            api_version=self.version,
        )
        for spec in self.config.outbound_messages:
            self.add_outbound_rule(spec)

    # --- building ---------------------------------------------------------------------

    def _register_apps(self, options: Mapping[str, Any]) -> None:
        """The console's External Client App, then those of option ``oauth_apps``."""
        self.webflow.register(
            webflow.ExternalClientApp(
                name=CONSOLE_APP_NAME,
                client_id=str(options.get("console_client_id") or CONSOLE_CLIENT_ID),
                client_secret=str(options.get("console_client_secret") or secrets.token_hex(16)),
                callback_urls=CONSOLE_CALLBACKS,
                require_secret=bool(options.get("console_require_secret", False)),
                rotate_refresh_tokens=bool(options.get("rotate_refresh_tokens", False)),
                loopback_any_port=True,
            )
        )
        for data in options.get("oauth_apps") or ():
            self.webflow.register(webflow.app_from_mapping(data))

    def _objects(self) -> list[metadata.ObjectDef]:
        objects = {obj.name: obj for obj in metadata.standard_objects()}
        for name, specs in self.config.custom_fields.items():
            base = objects.get(name)
            if base is None:
                raise ValueError(
                    f"invalid sandbox config: $.config.custom_fields.{name}: "
                    "no such standard object"
                )
            extra = tuple(metadata.custom_field(spec.as_dict()) for spec in specs)
            objects[name] = attrs.evolve(base, fields=base.fields + extra)
        for index, spec in enumerate(self.config.custom_objects):
            data = {"name": spec.name, "fields": [f.as_dict() for f in spec.fields]}
            if spec.label:
                data["label"] = spec.label
            objects[spec.name] = metadata.custom_object(data, f"a0{index}")
        return list(objects.values())

    def _rules(self) -> list[ValidationRule]:
        rules = []
        for spec in self.config.validation_rules:
            where = soql.parse(f"SELECT Id FROM {spec.object} WHERE {spec.condition}").where
            rules.append(ValidationRule(spec.object, spec.name, where, spec.message, spec.field))
        return rules

    def _seed_users(self, reuse: bool) -> None:
        users = [
            config_mod.UserSpec(
                ADMIN_USERNAME,
                "Admin",
                "Sandbox",
                password="admin-password",
                permission_sets=("System_Administrator",),
            ),
            config_mod.UserSpec(
                INTEGRATION_USERNAME,
                "Integration",
                "Eventsync",
                password=str(self.options.get("password", "integration-password")),
                security_token=str(self.options.get("security_token", "")),
                permission_sets=("Eventsync_Integration",),
            ),
            *self.config.users,
        ]
        sets = [
            config_mod.PermissionSetSpec(
                "System_Administrator", "System Administrator", metadata.PERMISSIONS
            ),
            config_mod.PermissionSetSpec(
                "Eventsync_Integration",
                "Eventsync Integration",
                ("PermissionsApiEnabled", "PermissionsRunFlow"),
            ),
            *self.config.permission_sets,
        ]
        if reuse:
            for record in self.store.records["User"].values():
                self.usernames[record["Username"].lower()] = record["Id"]
        bootstrap = WriteContext(ids.case_safe("005000000000000"))
        with self.store.transaction(bootstrap) as tx:
            set_ids = {}
            for permission_set in sets:
                found = self.store.match(
                    self.store.object("PermissionSet"), "Name", permission_set.name
                )
                if found:
                    set_ids[permission_set.name] = found[0]
                    continue
                values: dict[str, Any] = {
                    "Name": permission_set.name,
                    "Label": permission_set.label or permission_set.name,
                }
                values.update({perm: True for perm in permission_set.permissions})
                set_ids[permission_set.name] = tx.create("PermissionSet", values)
            for spec in users:
                user_id = self.usernames.get(spec.username.lower())
                if user_id is None:
                    user_id = tx.create(
                        "User",
                        {
                            "Username": spec.username,
                            "LastName": spec.last_name,
                            "FirstName": spec.first_name,
                            "Email": spec.email or spec.username,
                            "Alias": spec.last_name[:8],
                            "IsActive": True,
                        },
                    )
                    self.usernames[spec.username.lower()] = user_id
                    for name in spec.permission_sets:
                        if name not in set_ids:
                            raise ValueError(
                                f"invalid sandbox config: user {spec.username}: "
                                f"unknown permission set {name}"
                            )
                        tx.create(
                            "PermissionSetAssignment",
                            {"AssigneeId": user_id, "PermissionSetId": set_ids[name]},
                        )
                self.logins[spec.username.lower()] = oauth.Login(
                    user_id, spec.username, spec.password, spec.security_token
                )

    def add_outbound_rule(self, spec: config_mod.OutboundSpec) -> outbound.Rule:
        """Compile and activate an outbound message rule."""
        user = self.user_id(spec.user or INTEGRATION_USERNAME)
        rule = outbound.compile_rule(spec, self.store.ids.new("04k"), user)
        self.outbound.rules.append(rule)
        return rule

    # --- queries ----------------------------------------------------------------------

    def identity(self, login: oauth.Login) -> dict[str, Any]:
        """The identity service's answer for ``login`` (``GET /id/ORGID/USERID``)."""
        record = self.store.records["User"].get(login.user_id, {})
        base = f"{self.base_url}/services/data/v{self.version}"
        return {
            "id": f"{self.base_url}/id/{self.org_id}/{login.user_id}",
            "asserted_user": True,
            "user_id": login.user_id,
            "organization_id": self.org_id,
            "username": login.username,
            "nick_name": login.username.partition("@")[0],
            "display_name": " ".join(
                str(x) for x in (record.get("FirstName"), record.get("LastName")) if x
            ),
            "email": record.get("Email") or login.username,
            "active": True,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": 0,
            "urls": {
                "rest": f"{base}/",
                "sobjects": f"{base}/sobjects/",
                "query": f"{base}/query/",
            },
        }

    def user_id(self, username: str) -> str:
        """The id of a user by username; KeyError when unknown."""
        return self.usernames[username.lower()]

    def has_permission(self, user_id: str, permission: str) -> bool:
        """True when one of the user's permission sets grants ``permission``."""
        store = self.store
        for assignment in store.records["PermissionSetAssignment"].values():
            if assignment["AssigneeId"] != user_id or assignment.get("IsDeleted"):
                continue
            permission_set = store.records["PermissionSet"].get(assignment["PermissionSetId"])
            if permission_set and permission_set.get(permission):
                return True
        return False

    def new_cursor(self, rows: list[dict[str, Any]], total: int) -> str:
        """Keep the rest of a result for queryMore; returns the locator.

        At most ``MAX_CURSORS`` are kept; the oldest is dropped (its locator then answers
        INVALID_QUERY_LOCATOR, as an expired one does in a real org).
        """
        locator = self.store.ids.new("01g")[:15]
        with self.cursor_lock:
            self.cursors[locator] = Cursor(rows, total, 0)
            while len(self.cursors) > MAX_CURSORS:
                del self.cursors[next(iter(self.cursors))]
        return locator
