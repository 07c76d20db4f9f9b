"""Settings forms rendered from a declared settings schema (``eventsync.settings.describe``),
and the submitted form turned back into the table's values.

WTForms would need a form class per settings class; the schemas are declared by plugins at
run time, so the fields are described here and rendered by one template macro. CSRF still comes
from Flask-WTF (``CSRFProtect`` guards every POST). Secret settings (``<name>_env``) are
write-only: the form shows only whether the secret is set, never its value; a typed value is
saved in the secrets store and the table gets ``<name>_env`` naming it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs
import tomlkit
from werkzeug.datastructures import MultiDict

from ..models import UPDATE_POLICIES
from ..settings import SettingInfo, describe

__all__ = [
    "FormField",
    "form_fields",
    "read_form",
    "mapping_rows",
    "filter_rows",
    "FILTER_OPS",
    "UPDATE_POLICIES",
]

FILTER_OPS = ("=", "!=", "<", "<=", ">", ">=", "in", "like", "empty", "not_empty")
_URL = re.compile(r"https://[A-Za-z0-9.\-/]+[A-Za-z0-9/]")


@attrs.frozen
class FormField:
    """One input of a settings form.

    :ivar kind: ``text``, ``number``, ``select``, ``checkbox``, ``secret``, ``mapping``,
        ``filters`` or ``file`` (a setting the console leaves to the file, e.g. a cascade).
    :ivar value: the current value as the input shows it (never a secret's value).
    :ivar is_set: for a secret, whether it has a value in the store.
    :ivar suggestions: values a picker offers (discovered objects or fields, URLs from the help).
    """

    name: str
    label: str
    help: str
    kind: str
    required: bool = False
    value: Any = ""
    choices: tuple[str, ...] = ()
    is_set: bool = False
    suggestions: tuple[str, ...] = ()
    default: Any = None


def _type_text(cls: type, name: str) -> str:
    """The annotation of setting ``name`` as text, whether or not cattrs has resolved the
    class's string annotations into types already (``describe`` then says only ``tuple``)."""
    annotation = attrs.fields_dict(cls)[name].type
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type):
        return annotation.__name__
    return repr(annotation).replace("typing.", "")


def _kind(info: SettingInfo, text: str) -> str:
    if info.secret:
        return "secret"
    if "FieldMapConfig" in text:
        return "mapping"
    if "FilterConfig" in text:
        return "filters"
    if "tuple" in text or "Mapping" in text or "dict" in text:
        return "file"
    if "Literal" in text:
        return "select"
    if text == "bool":
        return "checkbox"
    if text.startswith(("float", "int")):
        return "number"
    return "text"


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def form_fields(
    cls: type,
    table: Mapping[str, Any],
    secret_set: Mapping[str, bool] | None = None,
    suggestions: Mapping[str, Sequence[str]] | None = None,
    skip: Sequence[str] = (),
) -> list[FormField]:
    """The inputs for the settings class ``cls`` with the values of ``table``.

    :param secret_set: per secret setting name, whether its variable has a value.
    :param suggestions: per setting name, the values its picker offers.
    :param skip: settings not shown (the screen handles them itself).
    """
    found = []
    for info in describe(cls):
        if info.name in skip:
            continue
        text = _type_text(cls, info.name)
        kind = _kind(info, text)
        value = table.get(info.name, info.default)
        offered = list((suggestions or {}).get(info.name, ()))
        offered += [u for u in _URL.findall(info.help) if u not in offered]
        found.append(
            FormField(
                name=info.name,
                label=info.label,
                help=info.help,
                kind=kind,
                required=info.required,
                value=(
                    ""
                    if kind == "secret"
                    else value
                    if kind in ("mapping", "filters", "file", "checkbox")
                    else _shown(value)
                ),
                choices=tuple(re.findall(r"'([^']*)'", text)) if kind == "select" else (),
                is_set=bool((secret_set or {}).get(info.name)),
                suggestions=tuple(offered),
                default=info.default,
            )
        )
    return found


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text  # kept as typed: validation names the setting and the type wanted


def _scalar(text: str) -> Any:
    """A filter's value: a TOML value when it reads as one (``10``, ``true``, ``["a", "b"]``),
    else the text itself."""
    try:
        return tomlkit.parse(f"v = {text}")["v"].unwrap()  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - any parse failure: the value is plain text
        return text


def _transforms(text: str) -> list[Any]:
    """``strip, lower`` or TOML items (``"strip", { name = "truncate", length = 80 }``)."""
    text = text.strip()
    if not text:
        return []
    try:
        return tomlkit.parse(f"t = [{text}]")["t"].unwrap()  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - not TOML: a comma-separated list of names
        return [name.strip() for name in text.split(",") if name.strip()]


def transforms_text(transforms: Sequence[Any]) -> str:
    """How a mapping row's transforms are shown for editing (the inverse of reading them)."""
    parts = []
    for item in transforms or ():
        if isinstance(item, str):
            parts.append(item)
        else:
            inline = tomlkit.inline_table()
            inline.update(item)
            parts.append(inline.as_string())
    return ", ".join(parts)


def mapping_rows(form: MultiDict[str, str], name: str) -> list[dict[str, Any]]:
    """The mapping entries of a submitted mapping editor (rows with no target are dropped)."""
    rows = []
    for index in sorted({int(k.split("-")[1]) for k in form if k.startswith(f"{name}-")}):
        prefix = f"{name}-{index}-"
        target = form.get(prefix + "target", "").strip()
        if not target:
            continue
        row: dict[str, Any] = {"target": target}
        what = form.get(prefix + "kind", "source")
        value = form.get(prefix + "value", "").strip()
        if what == "constant":
            row["constant"] = value
        elif what == "template":
            row["template"] = value
        else:
            row["source"] = value
        if transforms := _transforms(form.get(prefix + "transforms", "")):
            row["transforms"] = transforms
        if policy := form.get(prefix + "policy", "").strip():
            row["policy"] = policy
        rows.append(row)
    return rows


def filter_rows(form: MultiDict[str, str], name: str) -> list[dict[str, Any]]:
    """The conditions of a submitted filter editor (rows with no field are dropped)."""
    rows = []
    for index in sorted({int(k.split("-")[1]) for k in form if k.startswith(f"{name}-")}):
        prefix = f"{name}-{index}-"
        field = form.get(prefix + "field", "").strip()
        if not field:
            continue
        op = form.get(prefix + "op", "=")
        row: dict[str, Any] = {"field": field, "op": op}
        value = form.get(prefix + "value", "").strip()
        if op not in ("empty", "not_empty"):
            row["value"] = _scalar(value)
        rows.append(row)
    return rows


def read_form(
    fields: Sequence[FormField], form: MultiDict[str, str], present: Collection[str] = ()
) -> tuple[dict[str, Any], dict[str, str]]:
    """The table values and the typed secrets of a submitted settings form.

    Values: an empty input is None (the key is removed, the default applies), and so is a
    default value for a key not in the table (``present``), so the file says only what was
    chosen; a secret left empty keeps what is stored. Secrets: setting name -> the value typed.
    """
    values, typed = _read(fields, form)
    for field in fields:
        chosen = field.name in values and field.name not in present
        if chosen and field.default is not None and values[field.name] == field.default:
            values[field.name] = None
    return values, typed


def _read(
    fields: Sequence[FormField], form: MultiDict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    typed: dict[str, str] = {}
    for field in fields:
        if field.kind == "file":
            continue
        if field.kind == "secret":
            if text := form.get(field.name, ""):
                typed[field.name] = text
            continue
        if field.kind == "mapping":
            values[field.name] = mapping_rows(form, field.name) or None
            continue
        if field.kind == "filters":
            values[field.name] = filter_rows(form, field.name) or None
            continue
        if field.kind == "checkbox":
            values[field.name] = field.name in form
            continue
        text = form.get(field.name, "").strip()
        if not text:
            values[field.name] = None
        elif field.kind == "number":
            values[field.name] = _number(text)
        else:
            values[field.name] = text
    return values, typed
