"""A local, stateful emulator of the Hopin (RingCentral Events) ``/v1`` API.

``start(options)`` serves it on 127.0.0.1 and returns a :class:`~.server.HopinSandbox` handle.
The server, and with it flask and werkzeug (the ``[sandbox]`` extra), is imported on first use,
so the ``hopin_sandbox`` entry point (``.hooks``) loads in a production install too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import HopinSandbox, start

__all__ = ["HopinSandbox", "start"]


def __getattr__(name: str) -> Any:
    """``start`` and ``HopinSandbox``, imported from ``.server`` when first asked for."""
    if name in __all__:
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
