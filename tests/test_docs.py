"""docs/hooks.md documents every hookspec with its exact parameters."""

import inspect
import re
from pathlib import Path

from eventsync import hookspecs
from eventsync.plugins import hook_names

DOCS = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"
HEADING = re.compile(r"^## `(\w+)\(([^)]*)\)", re.MULTILINE)


def split_params(text: str) -> list[str]:
    """Parameter names of ``a: X, b: Callable[[str, Y], None]`` (commas inside brackets kept)."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "["
        depth -= char == "]"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.split(":")[0].strip() for p in parts if p.strip()]


def documented() -> dict[str, list[str]]:
    return {
        name: split_params(params)
        for name, params in HEADING.findall(DOCS.read_text(encoding="utf-8"))
    }


def test_every_hook_is_documented_with_its_exact_parameters():
    docs = documented()
    for name in hook_names():
        assert name in docs, f"hook {name} is not documented in docs/hooks.md"
        actual = list(inspect.signature(getattr(hookspecs, name)).parameters)
        assert docs[name] == actual, (
            f"docs/hooks.md names {docs[name]} for {name}, the hookspec has {actual}"
        )


def test_docs_name_no_hook_that_does_not_exist():
    assert set(documented()) <= set(hook_names())


def test_every_hookspec_docstring_states_returns_and_semantics():
    for name in hook_names():
        doc = inspect.getdoc(getattr(hookspecs, name))
        assert ":returns:" in doc, name
        assert "firstresult" in doc or "Collecting hook" in doc, name
