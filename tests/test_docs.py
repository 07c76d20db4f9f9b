"""docs/hooks.md documents every hookspec with its exact parameters; the docs stand on their own
(links stay inside the repository, nothing points at design notes kept elsewhere)."""

import inspect
import re
import subprocess
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


# --- the repository stands on its own ------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
#: Ways a file could point at the design notes kept outside this repository.
OUTSIDE_REFERENCES = (
    b"DESIGN.md",
    b"../shared",
    b"shared/reference",
    b"salesforce-api.md",
    b"hopin-api.md",
    b"platform-facts",
    b"style-anchors",
)
#: The vocabulary docs/glossary.md must define.
VOCABULARY = {
    "entity",
    "mark",
    "outbox",
    "generation",
    "lease",
    "link",
    "watermark",
    "snapshot",
    "dead letter",
    "finding",
    "verdict",
    "flow",
    "role",
    "system",
    "plugin",
    "connection",
    "settings",
    "options",
    "flow settings",
    "profile",
    "sandbox",
    "trigger",
    "poller",
    "backfill",
}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"```.*?```", re.DOTALL)


def tracked_files() -> list[str]:
    """Every file git tracks in this repository."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout
    return [name for name in listed.decode().split("\0") if name]


def slugs(path: Path) -> set[str]:
    """The anchors GitHub makes of a Markdown file's headings."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.*)$", text, re.MULTILINE)
    }


def test_no_tracked_file_points_at_a_design_document_outside_the_repository():
    files = tracked_files()
    assert "docs/architecture.md" in files and len(files) > 100
    offenders = []
    for name in files:
        if name == "tests/test_docs.py":  # it names the strings it looks for
            continue
        path = ROOT / name
        if path.is_file() and any(ref in path.read_bytes() for ref in OUTSIDE_REFERENCES):
            offenders.append(name)
    assert not offenders, f"refer to docs/architecture.md instead: {offenders}"


def test_markdown_links_resolve_inside_the_repository():
    problems = []
    for name in (n for n in tracked_files() if n.endswith(".md")):
        source = ROOT / name
        for target in LINK.findall(FENCE.sub("", source.read_text(encoding="utf-8"))):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            path = (source.parent / file).resolve() if file else source
            if not path.is_relative_to(ROOT) or not path.exists():
                problems.append(f"{name}: {target} is not a file of the repository")
            elif anchor and anchor not in slugs(path):
                problems.append(f"{name}: {target} names no heading of {path.name}")
    assert not problems, "\n".join(problems)


def test_the_glossary_defines_the_project_vocabulary():
    text = (ROOT / "docs" / "glossary.md").read_text(encoding="utf-8")
    defined = dict(re.findall(r"^\*\*([^*]+)\*\*: (.+)$", text, re.MULTILINE))
    assert set(defined) >= VOCABULARY, f"undefined: {sorted(VOCABULARY - set(defined))}"
    assert list(defined) == sorted(defined, key=str.lower), "keep the glossary alphabetical"


def test_the_architecture_and_glossary_are_linked_from_readme_and_plugin_authors():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    authors = (ROOT / "docs" / "plugin-authors.md").read_text(encoding="utf-8")
    assert "## Documentation" in readme
    for doc in ("architecture.md", "glossary.md"):
        assert f"(docs/{doc})" in readme, doc
        assert f"({doc})" in authors, doc


def test_the_architecture_has_its_five_parts():
    headings = re.findall(
        r"^## (.*)$", (ROOT / "docs" / "architecture.md").read_text("utf-8"), re.M
    )
    assert [h.split(" ", 1)[1].split(":")[0] for h in headings] == [
        "Layout of the distributions",
        "Core concepts",
        "The sync model",
        "Running modes",
        "Errors",
    ]
