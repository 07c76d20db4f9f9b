"""Refresh-token rotation: keep the new refresh token, and pick up one another process saved.

With rotation on, each refresh answer carries a new refresh token and the one used stops
working. ``keep_rotated`` saves the new one (``SystemSettings.save_secret``, into the
``[engine] secrets_file``). Processes sharing one org and one secrets file (``serve`` and
``worker``) each hold the token they last read. When one rotates it, the other's refresh is
refused with ``invalid_grant``. ``saved_elsewhere`` then reads the file again. If the file
holds a different token, the caller retries once with it.
"""

from __future__ import annotations

import os

import attrs
from eventsync.models import SystemSettings
from eventsync.secrets_store import SecretsStore

from .auth import Token

NAME = "refresh_token"


def keep_rotated(settings: SystemSettings, token: Token) -> SystemSettings:
    """``settings`` reading the token answer's new refresh token (saved), if it has one."""
    if not token.refresh_token:
        return settings
    return settings.save_secret(NAME, token.refresh_token)


def saved_elsewhere(settings: SystemSettings) -> SystemSettings | None:
    """``settings`` reading the refresh token now in the secrets file, when that differs from
    the one they hold; None otherwise (no refresh grant, no secrets file, the same token)."""
    var = settings.get(f"{NAME}_env")
    if settings.get("grant") != NAME or not settings.secrets_file or not var:
        return None
    saved = SecretsStore(settings.secrets_file).get(str(var))
    if not saved or (settings.has_secret(NAME) and saved == settings.secret(NAME)):
        return None
    env = os.environ if settings.env is None else settings.env
    return attrs.evolve(settings, env={**env, str(var): saved})
