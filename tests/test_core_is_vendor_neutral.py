"""Core names no vendor: every Salesforce, HubSpot or Hopin name lives in a plugin.

The scan reads core's code, not its documentation: identifiers, attribute names and string
literals (f-strings included) count; comments and docstrings (any string standing alone as a
statement) may describe examples.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core" / "src" / "eventsync"
#: Vendor words, in any letter case.
VENDOR = re.compile(
    r"salesforce|hopin|ringcentral|pardot|campaign|soql|sobject|sforce|hubspot|hubapi", re.I
)
#: Salesforce object names that are ordinary English words in another case.
VENDOR_EXACT = re.compile(r"\bLead\b")


def _documentation(tree: ast.AST) -> set[int]:
    """ids of the string constants that are documentation (a string as a statement)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


def _code_words(tree: ast.AST) -> Iterator[tuple[int, str]]:
    docs = _documentation(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield line, node.value
        elif isinstance(node, ast.Name):
            yield line, node.id
        elif isinstance(node, ast.Attribute):
            yield line, node.attr
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield line, node.name
        elif isinstance(node, ast.arg):
            yield line, node.arg
        elif isinstance(node, ast.alias):
            yield line, node.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield line, node.module
        elif isinstance(node, ast.keyword) and node.arg:
            yield line, node.arg


def vendor_names(source: str) -> list[tuple[int, str]]:
    """(line, text) of every code word of ``source`` that names a vendor."""
    return [
        (line, text)
        for line, text in _code_words(ast.parse(source))
        if VENDOR.search(text) or VENDOR_EXACT.search(text)
    ]


def test_the_scan_finds_vendor_names_in_code_but_not_in_documentation():
    source = (
        '"""Talks to Salesforce (documentation)."""\n'
        "# a Hopin comment\n"
        "def f(x):\n"
        '    """A Lead, in a docstring."""\n'
        '    return x.get("CampaignMember")\n'
        'OBJECT = f"{1} Lead"\n'
        "hopin_client = None\n"
    )
    assert sorted(line for line, _ in vendor_names(source)) == [5, 6, 7]


def test_core_code_names_no_vendor():
    found = []
    for path in sorted(CORE.rglob("*.py")):
        for line, text in vendor_names(path.read_text(encoding="utf-8")):
            found.append(f"{path.relative_to(CORE)}:{line}: {text!r}")
    assert not found, "vendor names in core's code (move them to a plugin):\n" + "\n".join(found)
