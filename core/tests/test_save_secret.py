"""SystemSettings.save_secret: a rotated credential written to the secrets file and seen by
later reads; without a secrets file, one WARNING saying what to do."""

from __future__ import annotations

import logging

import pytest
from eventsync.errors import ConfigurationError
from eventsync.models import SystemSettings
from eventsync.secrets_store import SecretsStore


def _settings(env: dict[str, str], secrets_file: str | None = None) -> SystemSettings:
    return SystemSettings(
        "crm", "acme", {"token_env": "CRM_TOKEN"}, env=env, secrets_file=secrets_file
    )


def test_writes_the_variable_to_the_secrets_file_and_later_reads_see_it(tmp_path):
    path = tmp_path / "secrets.env"
    path.write_text("# comment\nCRM_TOKEN='old'\nOTHER='keep'\n", encoding="utf-8")
    shared = SecretsStore(path).values()
    settings = _settings(shared, str(path))
    updated = settings.save_secret("token", "new$value")
    assert updated.secret("token") == "new$value"
    assert SecretsStore(path).values() == {"CRM_TOKEN": "new$value", "OTHER": "keep"}
    assert path.read_text(encoding="utf-8").startswith("# comment\n")
    # The engine's shared env is updated too: settings it builds later read the new value.
    assert _settings(shared).secret("token") == "new$value"


def test_without_a_secrets_file_one_warning_names_the_variable(caplog):
    shared = {"CRM_TOKEN": "old"}
    with caplog.at_level(logging.WARNING, logger="eventsync.models"):
        updated = _settings(shared).save_secret("token", "rotated-secret")
    assert updated.secret("token") == "rotated-secret"
    assert shared["CRM_TOKEN"] == "rotated-secret"
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    message = record.getMessage()
    assert "no [engine] secrets_file" in message and "CRM_TOKEN" in message
    assert "set [engine] secrets_file" in message
    assert "rotated-secret" not in message


def test_a_secret_without_its_env_setting_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError) as exc:
        _settings({}, str(tmp_path / "s.env")).save_secret("other", "x")
    assert "$.orgs.acme.systems.crm.other_env: missing" in str(exc.value)
    assert not (tmp_path / "s.env").exists()
