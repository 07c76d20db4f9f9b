"""The setup console: the guide's screens as web pages, with OAuth sign-in and a dashboard.

``eventsync console --config F`` serves it alone; ``eventsync run`` mounts it at ``/console``.
See docs/console.md for the security model and each screen.
"""

from .app import PREFIX, create_app, loopback, mounted

__all__ = ["create_app", "mounted", "loopback", "PREFIX"]
