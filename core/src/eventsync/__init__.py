"""eventsync: keep an event platform and a CRM in step, in real time.

Plugins import ``hookimpl`` from here::

    from eventsync import hookimpl

    @hookimpl
    def authenticate(system, settings): ...
"""

from importlib.metadata import PackageNotFoundError, version

from .hookspecs import hookimpl

try:
    __version__ = version("eventsync")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["hookimpl", "__version__"]
