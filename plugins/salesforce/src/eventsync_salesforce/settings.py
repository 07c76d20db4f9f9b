"""What the plugin declares: the ``[orgs.NAME.systems.salesforce]`` settings and the profile.

The settings class is structured by eventsync's one strict converter when the file is read, so
an unknown key, a wrong type or a misspelt grant is reported offline with its ``$.path``. The
profile carries the Salesforce names core must not know: the person fields default mappings
pair, the CampaignMember / Campaign defaults of the flows (as in the original integration's
guide) and the sObject Collections limit of 200 records a call.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
from eventsync.models import SystemProfile
from eventsync.settings import Invalid, setting

from .orgid import org_id_problem

__all__ = ["SalesforceSettings", "PROFILE", "SYSTEM", "COLLECTION_LIMIT"]

SYSTEM = "salesforce"
#: Records one sObject Collections call carries.
COLLECTION_LIMIT = 200
#: Records one push carries at most: five Collections calls packed into one Composite request.
PUSH_LIMIT = 5 * COLLECTION_LIMIT
Grant = Literal["jwt", "client_credentials", "password", "refresh_token", "access_token"]


def _http_url(_: Any, attribute: Any, value: str | None) -> None:
    if value is not None and not value.startswith(("https://", "http://")):
        raise Invalid(
            f"{attribute.name} {value!r}: must be an https URL, e.g. https://login.salesforce.com"
        )


def _valid_org_id(_: Any, __: Any, value: str | None) -> None:
    # A typo here would refuse every Outbound Message; say so when the file is read.
    problem = org_id_problem(value) if value is not None else None
    if problem:
        raise Invalid(f"org_id {value!r}: {problem}")


@attrs.frozen(kw_only=True)
class SalesforceSettings:
    """Every setting of a Salesforce connection (see the plugin's README for each grant)."""

    grant: Grant = setting(
        "jwt",
        label="OAuth grant",
        help="jwt (server-to-server with a certificate), client_credentials, password, "
        "refresh_token, or access_token (a given session).",
    )
    login_url: str = setting(
        "https://login.salesforce.com",
        label="Login URL",
        help="https://login.salesforce.com, https://test.salesforce.com for sandboxes, or your "
        "My Domain (https://acme.my.salesforce.com).",
        validator=_http_url,
    )
    client_id: str | None = setting(
        None,
        label="Consumer key",
        help="The consumer key of the External Client App (every grant but access_token).",
    )
    username: str | None = setting(
        None, label="Integration user", help="The integration user's username (jwt, password)."
    )
    private_key_env: str | None = setting(
        None,
        label="Private key",
        help="jwt: the environment variable holding the PEM private key of the app's certificate.",
        secret=True,
    )
    private_key_file: str | None = setting(
        None,
        label="Private key file",
        help="jwt: a PEM file instead of private_key_env (relative to the config file).",
        path=True,
    )
    audience: str | None = setting(
        None,
        label="JWT audience",
        help="jwt: the aud claim; derived from the login URL when left out.",
    )
    client_secret_env: str | None = setting(
        None,
        label="Consumer secret",
        help="client_credentials and password (optional for refresh_token).",
        secret=True,
    )
    password_env: str | None = setting(
        None, label="Password", help="password grant: the user's password.", secret=True
    )
    security_token_env: str | None = setting(
        None,
        label="Security token",
        help="password grant: appended to the password when the org requires it.",
        secret=True,
    )
    refresh_token_env: str | None = setting(
        None, label="Refresh token", help="refresh_token grant.", secret=True
    )
    access_token_env: str | None = setting(
        None,
        label="Access token",
        help="access_token grant: a session id (cannot be renewed when it expires).",
        secret=True,
    )
    instance_url: str | None = setting(
        None, label="Instance URL", help="access_token grant: the org's instance URL."
    )
    org_id: str | None = setting(
        None,
        label="Organization id",
        help="The 15- or 18-character org id, exactly (case matters); outbound messages from "
        "other orgs are refused.",
        validator=_valid_org_id,
    )
    outbound_token_env: str | None = setting(
        None,
        label="Outbound Message token",
        help="The secret ending the Outbound Message endpoint URL "
        "(https://HOST/hooks/ORG/salesforce/TOKEN); once set, messages without it are refused. "
        "At least 16 characters, e.g. from `python -c 'import secrets; "
        "print(secrets.token_urlsafe(32))'`.",
        secret=True,
    )
    outbound_token_previous_env: str | None = setting(
        None,
        label="Previous Outbound Message token",
        help="During a rotation, the token being replaced: accepted too until Salesforce has "
        "sent everything queued for the old URL (24 hours), then removed.",
        secret=True,
    )
    api_version: str = setting("59.0", label="API version", help="REST API version, e.g. 59.0.")
    ca_bundle: str | None = setting(
        None,
        label="CA bundle",
        help="A PEM file of certificate authorities to trust instead of the system store "
        "(relative to the config file).",
        path=True,
    )
    timeout: float = setting(60.0, label="Timeout (s)", help="Seconds per HTTP request.")
    max_retries: int = setting(
        4, label="Retries", help="Retries of transient failures per call and per record."
    )
    retry_backoff: float = setting(
        1.0, label="Retry backoff (s)", help="Base seconds of the exponential backoff."
    )
    batch_size: int = setting(
        COLLECTION_LIMIT,
        label="Records per call",
        help=f"Records per sObject Collections call (at most {COLLECTION_LIMIT}).",
        validator=attrs.validators.and_(
            attrs.validators.ge(1), attrs.validators.le(COLLECTION_LIMIT)
        ),
    )
    composite: bool = setting(
        True,
        label="Composite packing",
        help="Pack several Collections writes or match queries into one Composite request "
        "(one API call for up to five).",
    )
    bulk_threshold: int = setting(
        10000, label="Bulk threshold", help="Pushes with more records go through Bulk API 2.0."
    )
    bulk_wait: float = setting(
        5.0, label="Bulk poll wait (s)", help="Seconds between polls of a Bulk API job."
    )
    schema_ttl: float = setting(
        3600.0, label="Schema cache (s)", help="Seconds a describe result is reused."
    )


PROFILE = SystemProfile(
    system=SYSTEM,
    role="crm",
    label="Salesforce",
    settings=SalesforceSettings,
    max_batch=PUSH_LIMIT,
    case_sensitive_fields=False,
    person_fields={"first_name": "FirstName", "last_name": "LastName", "email": "Email"},
    flow_defaults={
        # As in the original integration: invitations are CampaignMembers, the ticket's
        # integration code is a custom field on their Campaign, attendance is their Status.
        "import_registrations": {
            "source_object": "CampaignMember",
            "ticket_code_field": "Campaign.Hopin_Ticket_Code__c",
        },
        "attendance": {
            "target_object": "CampaignMember",
            "status_field": "Status",
            "attended_value": "Attended",
        },
    },
)
