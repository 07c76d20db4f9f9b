"""Property-based tests of configuration parsing: whatever the document, never a crash.

``parse_config`` gets arbitrary TOML-like documents (tables, arrays and every TOML scalar,
keys included that look like paths) and, above all, the example configuration with random
values of random types put at random paths. It must return a Config or raise a
ConfigurationError whose every problem starts with its ``$`` path, and it must leave the
document it was given as it was.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import tomllib
from typing import Any

from eventsync.config import Config, example_config, parse_config
from eventsync.errors import ConfigurationError
from eventsync.plugins import Hooks, make_plugin_manager
from hypothesis import example, given, settings
from hypothesis import strategies as st

Path = tuple[str | int, ...]


@functools.cache
def hooks() -> Hooks:
    """The installed plugins, loaded once (the default of parse_config loads them per call)."""
    return Hooks(make_plugin_manager())


@functools.cache
def base() -> dict[str, Any]:
    """The example configuration as tomllib reads it."""
    return tomllib.loads(example_config())


def paths(node: Any, prefix: Path = ()) -> list[Path]:
    """Every path into a document, the root included."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


# --- strategies -----------------------------------------------------------------------------

#: Names the config knows, so that random tables reach deep into the structuring.
KNOWN = [
    *("engine", "entitlements", "orgs", "plan", "plugins", "crm", "event_platform"),
    *("systems", "flows", "plugin_options", "salesforce", "hopin", "pardot_guard", "name"),
    *("fields", "target", "source", "constant", "template", "transforms", "filters"),
    *("field", "op", "value", "enabled", "match_key", "target_object", "org_id", "grant"),
    *("listen", "workers", "batch_size", "plugins_allow", "plugins_block", "report_columns"),
    *("export_registrations", "import_registrations", "magic_links", "attendance"),
]
keys = st.one_of(
    st.sampled_from(KNOWN),
    st.text(max_size=8),
    # what a path is written with: a key must never be mistaken for part of one
    st.lists(st.sampled_from([" @ ", "$", ".", "[", "]", "'", '"', ":", "a", " "]), max_size=4).map(
        "".join
    ),
)
scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(),  # TOML has nan and inf
    st.text(max_size=12),
    st.sampled_from(["salesforce", "hopin", "business", "*", "=", "in", "Lead", "Email"]),
    st.datetimes(timezones=st.none() | st.just(dt.UTC)),
    st.dates(),
    st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=10,
)


@st.composite
def mutated_example(draw: st.DrawFn) -> dict[str, Any]:
    """The example configuration with one to four values replaced, added or removed."""
    doc = copy.deepcopy(base())
    for _ in range(draw(st.integers(1, 4))):
        choices = paths(doc)[1:]
        if not choices:
            break
        path = draw(st.sampled_from(choices))
        parent: Any = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "add", "remove"]))
        if action == "add" and isinstance(parent, dict):
            parent[draw(keys)] = draw(values)
        elif action == "remove":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(values)
    return doc


documents = st.one_of(
    mutated_example(),
    st.dictionaries(keys, values, max_size=4),
    st.fixed_dictionaries({}, optional={k: values for k in ("engine", "entitlements", "orgs")}),
)


def check(doc: dict[str, Any], plugins: Hooks | None) -> None:
    """The property: a Config, or a ConfigurationError whose problems all start with a path;
    the document is left unchanged."""
    before = copy.deepcopy(doc)
    try:
        config = parse_config(doc, hooks=plugins)
    except ConfigurationError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert isinstance(problem, str) and problem.startswith("$"), problem
    else:
        assert isinstance(config, Config)
    assert doc == before  # (a nan compares equal here: deepcopy keeps the same float)


@settings(max_examples=400)
@given(documents)
@example({"orgs": {"x @ y": {"plan": 5}}})  # the path was cut at the " @ " in the name
@example(
    {
        "orgs": {
            "acme": {
                "plan": "business",
                "plugins": ["hopin"],
                "systems": {"hopin": {"report_columns": {"a @ b": 1}}},
            }
        }
    }
)
def test_any_document_gives_a_config_or_problems_with_paths(doc: dict[str, Any]) -> None:
    check(doc, hooks())


@settings(max_examples=40)
@given(mutated_example())
def test_the_same_with_the_plugins_chosen_by_the_document(doc: dict[str, Any]) -> None:
    # hooks=None: parse_config loads the installed plugins less [engine] plugins_block.
    check(doc, None)
