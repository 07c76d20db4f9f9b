"""docs/deployment.md and its files (docs/deploy/): the command lines are valid ``eventsync``
command lines, the exit-code and signal settings match what ``eventsync run`` does, and the
documented example configuration is a valid file."""

from __future__ import annotations

import configparser
import re
import shlex
import tomllib
from pathlib import Path

import click
import pytest
from eventsync.cli import cli
from eventsync.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
)
from eventsync.config import parse_config

DOCS = Path(__file__).resolve().parents[1] / "docs"
DEPLOYMENT = DOCS / "deployment.md"
UNIT = DOCS / "deploy" / "eventsync.service"
SUPERVISOR = DOCS / "deploy" / "supervisord.conf"
CONFIG = "/etc/eventsync/eventsync.toml"


def ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True, comment_prefixes=("#", ";"))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


def parse_command_line(line: str) -> tuple[str, dict[str, object]]:
    """Parse an eventsync command line as the CLI would (without running it): the command's
    name and its parameters; click.UsageError for an unknown command or flag."""
    argv = shlex.split(line)
    assert Path(argv[0]).name == "eventsync", argv[0]
    assert Path(argv[0]).is_absolute(), "service managers need an absolute path"
    at = next(i for i, a in enumerate(argv) if i > 0 and not a.startswith("-"))
    group = cli.make_context("eventsync", argv[1 : at + 1])  # the global flags (--debug)
    name, rest = argv[at], argv[at + 1 :]
    command = cli.get_command(group, name)
    assert command is not None, f"no command {name!r}"
    ctx = command.make_context(name, rest, parent=group)
    return name, dict(ctx.params)


def test_parse_command_line_refuses_a_wrong_flag():
    with pytest.raises(click.UsageError):
        parse_command_line("/opt/eventsync/bin/eventsync run --confg x.toml")


def test_systemd_unit_runs_eventsync_run_with_valid_flags_and_exit_codes():
    unit = ini(UNIT)
    service = unit["Service"]
    name, params = parse_command_line(service["ExecStart"])
    assert name == "run" and params["config_path"] == CONFIG
    # Exit 2 (configuration) is never restarted; 3 (unreachable) and 1 are.
    assert str(EXIT_USAGE) in service["RestartPreventExitStatus"].split()
    assert str(EXIT_UNAVAILABLE) not in service["RestartPreventExitStatus"].split()
    assert service["Restart"] == "on-failure"
    # The stop signal is one `run` stops cleanly on, with time for its 30 s stop timeout.
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > 30
    assert service["StateDirectory"] == "eventsync" and service["UMask"] == "0077"
    assert service["WorkingDirectory"] == "/var/lib/eventsync"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert "ExecReload" not in service, "SIGHUP does not reload; the docs say restart"


def test_supervisord_program_runs_eventsync_run_with_valid_flags_and_exit_codes():
    program = ini(SUPERVISOR)["program:eventsync"]
    name, params = parse_command_line(program["command"])
    assert name == "run" and params["config_path"] == CONFIG
    expected = {int(c) for c in program["exitcodes"].split(",")}
    assert expected == {EXIT_OK, EXIT_USAGE}, "2 is expected (not restarted); 1 and 3 are not"
    assert program["autorestart"] == "unexpected"
    assert program["stopsignal"] == "TERM" and int(program["stopwaitsecs"]) > 30


def test_run_documents_the_signals_the_files_use():
    help_text = cli.get_command(click.Context(cli), "run").help or ""
    flat = " ".join(help_text.split())
    assert "SIGINT/SIGTERM" in flat and "SIGHUP is ignored" in flat


def test_deployment_md_lists_every_exit_code_and_both_files():
    text = DEPLOYMENT.read_text()
    rows = dict(re.findall(r"^\| (\d+) \| ([^|]+)\|", text, re.MULTILINE))
    codes = {EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED}
    assert {int(c) for c in rows} == codes
    assert "deploy/eventsync.service" in text and "deploy/supervisord.conf" in text


def test_deployment_md_example_config_is_valid():
    [block] = re.findall(r"```toml\n(.*?)```", DEPLOYMENT.read_text(), re.DOTALL)
    config = parse_config(
        tomllib.loads(block), source="docs/deployment.md", base_dir="/etc/eventsync"
    )
    assert config.engine.state == "/var/lib/eventsync/eventsync.sqlite"
    assert config.engine.secrets_file == "/etc/eventsync/secrets.env"
    sf = config.org("acme").systems["salesforce"]
    assert sf["private_key_file"] == "/etc/eventsync/keys/jwt.pem"


def test_readme_exit_code_table_matches_the_cli():
    readme = (DOCS.parent / "README.md").read_text()
    section = readme[readme.index("### Exit codes") :]
    rows = re.findall(r"^\| (\d+) \|", section[: section.index("\n\n", 20)], re.MULTILINE)
    assert {int(c) for c in rows} == {
        EXIT_OK,
        EXIT_PROBLEMS,
        EXIT_USAGE,
        EXIT_UNAVAILABLE,
        EXIT_INTERRUPTED,
    }
