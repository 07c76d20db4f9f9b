"""``eventsync console``: serve the setup console, or create its admin account."""

from __future__ import annotations

import os

import click

from .common import EXIT_OK, EXIT_USAGE, config_option, refuse_bad_listen

#: Where the console listens unless told (beside ``eventsync run``'s default 8080).
DEFAULT_LISTEN = "127.0.0.1:8090"
#: The admin password for ``--create-admin`` without a terminal (scripts, containers).
PASSWORD_ENV = "EVENTSYNC_CONSOLE_PASSWORD"


@click.command("console")
@config_option("Config file the console reads and writes (created when missing).")
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    help="HOST:PORT to serve on. Off loopback the session cookie is Secure: serve it behind HTTPS.",
)
@click.option(
    "--create-admin",
    is_flag=True,
    help=f"Create (or replace) the admin account, then exit; the password is asked for, or "
    f"read from ${PASSWORD_ENV}.",
)
@click.option("--username", default="admin", show_default=True, help="With --create-admin.")
def console_command(config_path: str, listen: str, create_admin: bool, username: str) -> None:
    """Serve the setup console at http://HOST:PORT/console/ (docs/console.md).

    The console edits the config file (keeping its comments) and puts secrets in the
    [engine] secrets_file; sign-in is required on every page.
    """
    from ..console import accounts

    if create_admin:
        password = os.environ.get(PASSWORD_ENV) or click.prompt(
            "admin password", hide_input=True, confirmation_prompt=True
        )
        try:
            store = accounts.create_admin(config_path, username, password)
        except ValueError as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(EXIT_USAGE) from None
        click.echo(f"admin {username!r} created; its password hash is in {store.path}")
        raise SystemExit(EXIT_OK)
    refuse_bad_listen(listen)
    if accounts.account(config_path) is None:
        click.echo(
            f"error: the console has no admin account; create it with: "
            f"eventsync console --config {config_path} --create-admin",
            err=True,
        )
        raise SystemExit(EXIT_USAGE)
    _serve(config_path, listen)


def _serve(config_path: str, listen: str) -> None:
    import signal
    import threading

    from waitress.server import create_server

    from ..console import create_app, loopback, mounted

    app = create_app(config_path, secure_cookies=not loopback(listen))
    host, _, port = listen.rpartition(":")
    server = create_server(mounted(app), host=host, port=int(port), ident="eventsync-console")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.run, name="eventsync-console", daemon=True)
    thread.start()
    click.echo(f"eventsync console on http://{host}:{server.effective_port}/console/", err=True)
    stop.wait()
    server.close()
    raise SystemExit(EXIT_OK)
