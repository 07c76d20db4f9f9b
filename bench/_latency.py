"""The latency profiles every benchmark runs with: none, then the sandboxes' ``realistic``."""

from __future__ import annotations

import argparse

PROFILES = ("none", "realistic")


def add_argument(parser: argparse.ArgumentParser) -> None:
    """``--latency both|none|realistic`` (default both: each profile in turn, printed apart)."""
    parser.add_argument(
        "--latency",
        choices=["both", *PROFILES],
        default="both",
        help="the sandboxes' latency profile (default: both, one after the other)",
    )


def chosen(args: argparse.Namespace) -> list[str]:
    """The profiles to run, in order."""
    return list(PROFILES) if args.latency == "both" else [args.latency]


def option(profile: str) -> str | None:
    """The sandboxes' ``latency`` option for ``profile``."""
    return None if profile == "none" else profile
