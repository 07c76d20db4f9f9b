"""The README's configuration examples, put together, are one valid configuration file."""

import re
import tomllib
from pathlib import Path

from eventsync.config import FLOW_NAMES, parse_config

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_toml_examples_form_a_valid_config():
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) >= 5
    config = parse_config(tomllib.loads("\n".join(blocks)), source="README.md")
    org = config.org("acme")
    assert org.flows.enabled() == list(FLOW_NAMES)
    assert "pardot_guard" in org.plugins


def test_readme_names_the_two_setup_commands_first():
    text = README.read_text(encoding="utf-8")
    assert text.index("make demo") < text.index("## ")
    assert text.index("make test") < text.index("## ")
