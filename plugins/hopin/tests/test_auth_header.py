"""The API key header form (``auth_header``): ``Bearer <key>`` or the key alone, against
sandboxes that accept only one form."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import requests
from eventsync.errors import AuthenticationError, ConfigurationError
from eventsync.models import PullRequest
from eventsync_hopin import plugin
from eventsync_hopin.sandbox import start

OTHER = {"raw": "bearer", "bearer": "raw"}


@pytest.fixture(scope="module", params=["raw", "bearer"])
def strict(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A sandbox that accepts only one header form (the param)."""
    handle = start({"auth_header": request.param, "seed_registrations": 2})
    try:
        yield handle
    finally:
        handle.stop()


def _form(settings: Any, form: str) -> Any:
    return attrs.evolve(settings, options={**settings.options, "auth_header": form})


def test_the_strict_sandbox_accepts_only_its_form(strict):
    form = strict.info()["auth_header"]
    key = strict.info()["api_key"]
    headers = {"raw": key, "bearer": f"Bearer {key}"}
    url = f"{strict.url}/v1/organizations"
    assert requests.get(url, headers={"Authorization": headers[form]}, timeout=5).ok
    refused = requests.get(url, headers={"Authorization": headers[OTHER[form]]}, timeout=5)
    assert refused.status_code == 401


def test_the_default_sandbox_accepts_both_forms(sandbox):
    key = sandbox.info()["api_key"]
    assert sandbox.info()["auth_header"] == "both"
    for value in (key, f"Bearer {key}"):
        response = requests.get(
            f"{sandbox.url}/v1/organizations", headers={"Authorization": value}, timeout=5
        )
        assert response.status_code == 200, value


def test_the_configured_form_is_used_for_every_call(strict):
    form = strict.info()["auth_header"]
    settings = _form(strict.settings("acme"), form)
    connection = plugin.authenticate("hopin", settings)
    # The strict sandbox refuses the other form, so every page read proves the form sent.
    emails = {r.get("email") for r in plugin.pull(connection, PullRequest("registration"))}
    assert emails == {"attendee0@example.com", "attendee1@example.com"}


def test_the_refused_form_names_the_accepted_one_and_the_setting(strict):
    form = strict.info()["auth_header"]
    wrong = _form(strict.settings("acme"), OTHER[form])
    with pytest.raises(AuthenticationError) as exc:
        plugin.authenticate("hopin", wrong)
    text = str(exc.value)
    shown = {"raw": "'Authorization: <key>'", "bearer": "'Authorization: Bearer <key>'"}
    assert f"accepted {shown[form]}" in text and f"refused {shown[OTHER[form]]}" in text
    assert exc.value.hint == f'set auth_header = "{form}" in [orgs.acme.systems.hopin]'
    assert strict.info()["api_key"] not in text, "the key never appears in errors"


def test_a_wrong_key_is_refused_in_both_forms(strict):
    settings = strict.settings("acme")
    bad = attrs.evolve(settings, env={k: "not-the-key" for k in settings.env})
    with pytest.raises(AuthenticationError) as exc:
        plugin.authenticate("hopin", bad)
    assert "credentials rejected" in str(exc.value)
    assert "both header forms were refused" in str(exc.value)
    assert "auth_header =" not in str(exc.value)


def test_the_sandbox_settings_name_the_form_it_accepts(strict):
    form = strict.info()["auth_header"]
    # Only a raw-only sandbox needs the setting: bearer is the default.
    assert strict.settings("acme").options.get("auth_header", "bearer") == form


def test_an_unknown_form_is_a_configuration_error(settings, tweak):
    with pytest.raises(ConfigurationError) as exc:
        plugin.authenticate("hopin", tweak(settings, auth_header="basic"))
    assert "auth_header" in str(exc.value)
