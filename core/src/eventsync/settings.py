"""Declared settings: the typed schemas of every settings table, and the one converter for them.

Everything a user writes in the configuration file is structured by one strict cattrs converter
(unknown keys rejected, types checked, every problem reported with its ``$.path``): the engine's
own tables, each flow's ``[orgs.X.flows.NAME]``, each system plugin's ``[orgs.X.systems.NAME]``
and each concern plugin's ``[orgs.X.plugin_options.NAME]``. Plugins declare their schemas as
frozen attrs classes whose attributes are made with ``setting()``, which records a label, a help
text and whether the value names a secret; ``describe()`` lists them (the setup console renders
its forms from this, the docs their tables).

A secret is never a value of the file: a setting ``<name>_env`` declared with ``secret=True``
holds the *name* of the environment variable (or secrets-file entry) that holds it.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.v import format_exception

__all__ = [
    "SettingInfo",
    "setting",
    "describe",
    "structure",
    "Invalid",
    "salvage",
    "converter",
    "ENV_NAME",
    "path_settings",
    "resolve_paths",
]

T = TypeVar("T")
_META = "eventsync"
#: What an environment variable name looks like (the value of a ``*_env`` setting).
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
Scalar = str | int | float | bool | None
_SCALARS = (str, int, float, bool, type(None))
_SCALAR_NAMES = {
    str: "text",
    int: "a whole number",
    float: "a number",
    bool: "true/false",
    type(None): "nothing",
}


def _is_scalar_of(value: Any, member: type) -> bool:
    if member is bool or isinstance(value, bool):
        return member is bool and isinstance(value, bool)
    if member is float:
        return isinstance(value, (int, float))
    return isinstance(value, member)


@attrs.frozen
class SettingInfo:
    """One declared setting, as forms and docs show it.

    :ivar name: the key in the TOML table.
    :ivar label: a short human label ("Login URL").
    :ivar help: one or two sentences: what it is, an example, where to find it.
    :ivar secret: True when the value names an environment variable holding a secret.
    :ivar required: True when the setting has no default.
    :ivar default: the default value (None when required or when the default is None).
    :ivar type: the annotation, as text (``"str"``, ``"int"``, ``"Literal['jwt', 'password']"``).
    :ivar path: True when the value is a file path (relative ones are read against the
        config file's directory).
    """

    name: str
    label: str
    help: str = ""
    secret: bool = False
    required: bool = False
    default: Any = None
    type: str = ""
    path: bool = False


def setting(
    default: Any = attrs.NOTHING,
    *,
    label: str,
    help: str = "",
    secret: bool = False,
    path: bool = False,
    factory: Any = None,
    validator: Any = None,
) -> Any:
    """An attrs field of a settings class, with the label, help text and secrecy forms need.

    ``secret=True`` marks a ``<name>_env`` setting whose value names an environment variable;
    ``path=True`` a file path, which a configuration file resolves against its own directory
    (``resolve_paths``), so the process's working directory never changes what is read.
    """
    meta = {_META: {"label": label, "help": help, "secret": secret, "path": path}}
    if factory is not None:
        return attrs.field(factory=factory, metadata=meta, validator=validator)
    return attrs.field(default=default, metadata=meta, validator=validator)


def describe(cls: type) -> list[SettingInfo]:
    """The declared settings of an attrs settings class, in declaration order."""
    infos = []
    for field in attrs.fields(cls):
        meta = field.metadata.get(_META, {})
        required = field.default is attrs.NOTHING
        default = None
        if not required:
            factory = getattr(field.default, "factory", None)
            default = factory() if callable(factory) else field.default
        annotation = (
            field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
        )
        infos.append(
            SettingInfo(
                name=field.name,
                label=meta.get("label") or field.name.replace("_", " ").capitalize(),
                help=meta.get("help", ""),
                secret=bool(meta.get("secret", False)),
                required=required,
                default=default,
                type=str(annotation or field.type),
                path=bool(meta.get("path", False)),
            )
        )
    return infos


class Invalid(ValueError):
    """A structuring failure whose message is already written for the user."""


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, Invalid):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required setting missing"
    return format_exception(exc, type_)


def _problems(exc: cattrs.BaseValidationError, top: str, known: tuple[str, ...] = ()) -> list[str]:
    """Every error of a structuring failure as ``$.path.key: message``."""
    errors: list[tuple[BaseException, Any]] = []

    def remember(error: BaseException, type_: Any) -> str:
        # transform_error writes "<this> @ <path>": an index, not the message, so that
        # neither a value in a message nor a key holding " @ " can be taken for the path.
        errors.append((error, type_))
        return str(len(errors) - 1)

    lines = []
    for line in cattrs.transform_error(exc, path=top, format_exception=remember):
        index, path = line.split(" @ ", 1)
        error, type_ = errors[int(index)]
        # cattrs writes "$.orgs['acme'].plan"; users read "$.orgs.acme.plan".
        path = top + re.sub(r"\['([^']*)'\]", r".\1", path[len(top) :])
        if not isinstance(error, cattrs.ForbiddenExtraKeysError):
            lines.append(f"{path}: {_format_exception(error, type_)}")
            continue
        for key in sorted(error.extra_fields):
            hint = ""
            if path == top and known:
                close = difflib.get_close_matches(key, known, n=1)
                if close:
                    hint = f"; did you mean {close[0]!r}?"
                elif len(known) <= 10:
                    hint = f" (known: {', '.join(known)})"
                else:
                    hint = " (check its spelling against the documented settings)"
            lines.append(f"{path}.{key}: unknown setting{hint}")
    return lines


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    # TOML has real types; a setting of the wrong type is a mistake to report, not to coerce
    # (cattrs would turn 5 into "5" and "many" into an error only at run time).
    def structure_str(value: Any, _: type) -> str:
        if not isinstance(value, str):
            raise Invalid(f"expected text, got {type(value).__name__} {value!r}")
        return value

    def structure_int(value: Any, _: type) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"expected a whole number, got {type(value).__name__} {value!r}")
        return value

    def structure_float(value: Any, _: type) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid(f"expected a number, got {type(value).__name__} {value!r}")
        return float(value)

    def structure_bool(value: Any, _: type) -> bool:
        if not isinstance(value, bool):
            raise Invalid(f"expected true or false, got {type(value).__name__} {value!r}")
        return value

    conv.register_structure_hook(str, structure_str)
    conv.register_structure_hook(int, structure_int)
    conv.register_structure_hook(float, structure_float)
    conv.register_structure_hook(bool, structure_bool)

    def structure_scalar(value: Any, _: type) -> Scalar:
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        raise Invalid(
            f"a constant must be text, a number or true/false, not {type(value).__name__}"
        )

    conv.register_structure_hook_func(lambda t: t == Scalar, structure_scalar)

    def structure_names(value: Any, _: type) -> tuple[str, ...]:
        # cattrs would turn "salesforce" into ('s', 'a', ...); a list is required.
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise Invalid(f'expected a list of names, e.g. ["{value}"]')
        bad = [v for v in value if not isinstance(v, str)]
        if bad:
            raise Invalid(f"expected names (text), got {bad!r}")
        return tuple(value)

    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], structure_names)

    def scalar_union(type_: Any) -> bool:
        members = (
            typing.get_args(type_)
            if typing.get_origin(type_) in (typing.Union, types.UnionType)
            else ()
        )
        return bool(members) and all(m in _SCALARS for m in members)

    def structure_scalar_union(value: Any, type_: Any) -> Any:
        members = typing.get_args(type_)
        if value is None and type(None) in members:
            return None
        for member in members:
            if member is not type(None) and _is_scalar_of(value, member):
                return float(value) if member is float else value
        names = " or ".join(_SCALAR_NAMES[m] for m in members)
        raise Invalid(f"expected {names}, got {type(value).__name__} {value!r}")

    conv.register_structure_hook_func(scalar_union, structure_scalar_union)

    def structure_literal(value: Any, type_: Any) -> Any:
        allowed = typing.get_args(type_)
        if value not in allowed or isinstance(value, bool) != any(
            isinstance(a, bool) for a in allowed
        ):
            raise Invalid(f"expected one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
        return value

    conv.register_structure_hook_func(
        lambda t: typing.get_origin(t) is typing.Literal, structure_literal
    )

    def structure_table(value: Any, type_: Any) -> Any:
        if not isinstance(value, Mapping):
            raise Invalid(f"expected a table, got {type(value).__name__} {value!r}")
        return dict(value)

    conv.register_structure_hook_func(
        lambda t: t in (Mapping[str, Any], dict[str, Any]), structure_table
    )
    return conv


#: The one strict converter for every settings table (private to eventsync and its plugins'
#: settings; records crossing hooks are converted by each plugin's own converter).
converter = _make_converter()


def salvage(cls: type[T], data: Mapping[str, Any], problems: list[str], path: str) -> T | None:
    """``data`` structured without the settings ``problems`` name (each ``path.key: ...``), so
    the rest can still be checked; None when even that fails. The problems are not repeated."""
    broken = {
        p[len(path) + 1 :].split(":", 1)[0].split(".", 1)[0].split("[", 1)[0]
        for p in problems
        if p.startswith(path + ".")
    }
    known = {f.name for f in attrs.fields(cls)} if attrs.has(cls) else set()
    kept = {k: v for k, v in data.items() if k in known and k not in broken}
    return structure(cls, kept, path)[0]


def structure(cls: type[T], data: Any, path: str) -> tuple[T | None, list[str]]:
    """Structure ``data`` into ``cls`` strictly; returns the instance (None on failure) and
    every problem as ``"$.path.key: what is wrong"``."""
    if not isinstance(data, Mapping):
        return None, [f"{path}: expected a table of settings, got {type(data).__name__}"]
    try:
        return converter.structure(dict(data), cls), []
    except (cattrs.ClassValidationError, cattrs.IterableValidationError) as exc:
        known = (
            tuple(f.name for f in attrs.fields(cls) if not f.metadata.get("from_key"))
            if attrs.has(cls)
            else ()
        )
        return None, _problems(exc, path, known)
    except (Invalid, TypeError, ValueError) as exc:
        return None, [f"{path}: {exc}"]


def path_settings(cls: type) -> frozenset[str]:
    """The names of the settings of ``cls`` declared with ``path=True``."""
    if not attrs.has(cls):
        return frozenset()
    return frozenset(
        f.name for f in attrs.fields(cls) if f.metadata.get(_META, {}).get("path", False)
    )


def resolve_paths(cls: type | None, table: Mapping[str, Any], base_dir: str) -> dict[str, Any]:
    """``table`` with every relative path setting of ``cls`` made absolute against ``base_dir``
    (``~`` expanded); the table unchanged when ``base_dir`` is empty (a config made in code)."""
    import os.path

    names = path_settings(cls) if cls is not None and base_dir else frozenset()
    resolved = dict(table)
    for name in names:
        value = resolved.get(name)
        if isinstance(value, str) and value:
            resolved[name] = os.path.join(base_dir, os.path.expanduser(value))
    return resolved
