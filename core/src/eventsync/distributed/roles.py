"""What every multi-process role needs before it starts: a shared state database, a broker,
and Celery installed."""

from __future__ import annotations

from ..config import Config
from ..errors import ConfigurationError

__all__ = ["require_scale_out"]


def require_scale_out(config: Config, role: str) -> None:
    """Refuse (ConfigurationError, one line per problem) a configuration ``role`` cannot run
    with: a SQLite state (each process would have a file of its own), no broker, or no Celery.
    """
    problems = []
    state = config.engine.state
    if not state.startswith(("postgresql://", "postgresql+")):
        problems.append(
            f"$.engine.state: `eventsync {role}` shares its state with other processes, which "
            "SQLite cannot do; set it to a PostgreSQL URL such as "
            '"postgresql+psycopg://eventsync@db.internal/eventsync" (or use `eventsync run`, '
            "the one-process mode)"
        )
    if not config.engine.broker:
        problems.append(
            f"$.engine.broker: `eventsync {role}` needs a Celery broker; set it to a Redis "
            '("redis://HOST:6379/0") or RabbitMQ ("amqp://USER@HOST:5672//") URL'
        )
    try:
        import celery  # noqa: F401
    except ImportError:
        problems.append(
            f"`eventsync {role}` needs Celery, which is not installed; install the extra: "
            "pip install 'eventsync[scale]'"
        )
    if problems:
        raise ConfigurationError(problems)
