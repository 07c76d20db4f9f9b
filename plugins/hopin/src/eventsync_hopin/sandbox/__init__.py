"""A local, stateful emulator of the Hopin (RingCentral Events) ``/v1`` API.

``start(options)`` serves it on 127.0.0.1 and returns a :class:`~.server.HopinSandbox` handle.
"""

from .server import HopinSandbox, start

__all__ = ["HopinSandbox", "start"]
