"""One way to read a TOML or JSON table into typed values, used by every config reader.

A table is checked against a schema (key -> declared type, e.g. a dataclass's field annotations):
unknown keys and missing required keys are refused by name, and each value is checked against its
type (``int``, ``float``, ``bool``, ``str``, ``Literal`` choices, unions, lists). Every error is one
:class:`~bmcnn_hw.errors.ConfigError` that starts with ``where`` (the file and the table), so a
device file, a cost model, an architecture, a model file, a retention file and a flow all say what
is wrong the same way. Value ranges stay with the classes (their ``__post_init__``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from .errors import ConfigError

_T = TypeVar("_T")


_SCHEMAS: dict[type, dict[str, Any]] = {}


def schema_of(cls: type) -> dict[str, Any]:
    """Key -> declared type of a dataclass's init fields (string annotations resolved)."""
    if cls not in _SCHEMAS:
        hints = typing.get_type_hints(cls)
        _SCHEMAS[cls] = {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}
    return _SCHEMAS[cls]


def type_problem(value: Any, annotation: Any) -> str | None:
    """What ``value`` lacks to be of type ``annotation`` (e.g. "is not a number"), or None when it fits.

    Types this module does not know (a nested dataclass, ``Any``) are left to the constructor.
    """
    expected = describe(annotation)
    if expected is None or _fits(value, annotation):
        return None
    return f"is not {expected}"


def describe(annotation: Any) -> str | None:
    """Words for the values ``annotation`` allows ("a number", "one of 'a', 'b'"), None if unchecked."""
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        arms = [describe(arm) for arm in get_args(annotation)]
        known = [arm for arm in arms if arm is not None]
        return " or ".join(dict.fromkeys(known)) if len(known) == len(arms) else None
    if origin in (list, tuple, Collection):
        item = _item_type(annotation)
        words = describe(item) if item is not None else None
        return f"a list (each item {words})" if words else "a list"
    if origin is dict or annotation is dict:
        return "a table"
    return _SIMPLE.get(annotation)


def _item_type(annotation: Any) -> Any:
    """The item type of ``list[X]``, ``tuple[X, ...]`` or ``Collection[X]``; None when not one type."""
    args = get_args(annotation)
    if get_origin(annotation) is tuple:
        return args[0] if len(args) == 2 and args[1] is Ellipsis else None
    return args[0] if len(args) == 1 else None


_SIMPLE: dict[Any, str] = {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
                           type(None): "absent (none)", list: "a list", tuple: "a list", Path: "a path"}


def _fits(value: Any, annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        return any(_fits(value, arm) for arm in get_args(annotation))
    if origin in (list, tuple, Collection) or annotation in (list, tuple):
        item = _item_type(annotation) if origin else None
        return isinstance(value, (list, tuple)) and (item is None or all(_fits(v, item) for v in value))
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is type(None):
        return value is None
    return isinstance(value, annotation) if isinstance(annotation, type) else True


def check_table(table: Any, schema: Mapping[str, Any], where: str, *, required: Collection[str] = ()) -> dict:
    """``table`` as a dict, checked against ``schema`` (key -> type).

    Raises:
        ConfigError: "WHERE: must be a table", "WHERE: unknown key(s) ...; expected some of ...",
            "WHERE: lacks ...", or "WHERE: KEY = VALUE is not ...".
    """
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table of key = value, not {type(table).__name__}")
    unknown = sorted(set(table) - set(schema))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; expected some of "
                          f"{', '.join(sorted(schema))}")
    missing = [key for key in required if key not in table]
    if missing:
        raise ConfigError(f"{where}: lacks {', '.join(missing)}; expected {', '.join(schema)}")
    for key, value in table.items():
        problem = type_problem(value, schema[key])
        if problem:
            raise ConfigError(f"{where}: {key} = {value!r} {problem}")
    return dict(table)


def required_fields(cls: type) -> list[str]:
    """The init fields of dataclass ``cls`` that have no default, in declaration order."""
    return [f.name for f in dataclasses.fields(cls) if f.init and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING]


def from_table(cls: type[_T], table: Any, where: str, *, required: Collection[str] = ()) -> _T:
    """An instance of dataclass ``cls`` from ``table``, checked by :func:`check_table` (the fields
    without a default are required, besides ``required``); an error of its own validation is
    prefixed with ``where``.

    Raises:
        ConfigError: as :func:`check_table`, or the class's own check of a value.
    """
    required = list(dict.fromkeys([*required_fields(cls), *required]))
    values = check_table(table, schema_of(cls), where, required=required)
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
