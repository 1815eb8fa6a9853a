"""Command options declared once, as dataclass fields, and read from a command line or a TOML table.

Each ``bmcnn-hw`` command's options are one dataclass (:mod:`bmcnn_hw.options.commands`); a
field's annotation gives its type and choices (``Literal``), its default is the command's default,
and :func:`option` / :func:`positional` attach the help text and the command-line spelling. From the
one declaration:

- :func:`add_arguments` builds the argparse arguments of a subcommand (so ``--help`` and the
  parser cannot drift from the dataclass), and :func:`from_namespace` turns the parse into an
  instance;
- :func:`from_table` builds an instance from a flow file's ``args`` and ``[options]`` table,
  values checked against the same types and converters as on the command line (no argv round trip);
- :func:`command_line` writes an instance's non-default values back as the equivalent command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import shlex
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from ..errors import ConfigError
from ..tables import check_table, type_problem

_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class Arg:
    """How one options field appears on the command line (see :func:`option`)."""

    help: str
    flag: str | None = None
    short: str | None = None
    metavar: str | None = None
    positional: bool = False
    convert: Callable[[str], Any] | None = None
    aliases: tuple[str, ...] = ()
    group: str | None = None
    exclusive: str | None = None
    repeat: bool = False
    nargs: str | None = None
    const: Any = None
    negative: tuple[str, str] | None = None


def option(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING,
           **spelling: Any) -> Any:
    """A dataclass field that is a ``--long-option`` (``flag`` overrides the spelling derived from the
    field name; ``short`` adds e.g. ``-o``; ``convert`` turns the command-line string into the value
    and checks its range; ``aliases`` are deprecated spellings that warn; ``group`` titles an argument
    group; ``exclusive`` names a set of options of which one may be given; ``repeat`` collects a
    repeated option into a list; ``nargs``/``const`` as argparse's; ``negative`` is ``(flag, help)``
    of an option that sets the field to False). No default makes the option required."""
    metadata = {"arg": Arg(help=help, **spelling)}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def positional(default: Any = dataclasses.MISSING, *, help: str, **spelling: Any) -> Any:
    """A dataclass field that is a positional argument (a list type takes one or more, a default of
    None makes it optional)."""
    return option(default, help=help, positional=True, **spelling)


def arg_of(field: dataclasses.Field) -> Arg:
    """The command-line description of an options field."""
    return field.metadata["arg"]


def flag_of(field: dataclasses.Field) -> str:
    """The long option of a field (``--chip-seed`` for ``chip_seed``), or its metavar if positional."""
    arg = arg_of(field)
    if arg.positional:
        return arg.metavar or field.name.upper()
    return arg.flag or "--" + field.name.replace("_", "-")


def argument_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of options class ``cls`` in --help order: its own first, then each base's in the
    order the bases are listed (shared groups such as device overrides come last)."""
    by_name = {f.name: f for f in dataclasses.fields(cls) if "arg" in f.metadata}
    return [by_name[name] for name in _declared_order(cls) if name in by_name]


def _declared_order(cls: type) -> list[str]:
    order = list(inspect.get_annotations(cls))
    for base in cls.__bases__:
        order += [name for name in _declared_order(base) if name not in order]
    return order


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _strip_none(annotation: Any) -> tuple[Any, bool]:
    """``X`` and whether None is allowed, for ``X | None``."""
    args = get_args(annotation)
    if type(None) in args:
        rest = tuple(a for a in args if a is not type(None))
        return (rest[0] if len(rest) == 1 else typing.Union[rest]), True  # noqa: UP007 (a runtime Union)
    return annotation, False


def _converter(arg: Arg, annotation: Any) -> Callable[[str], Any] | None:
    """The function that turns one command-line word into a value of ``annotation``."""
    if arg.convert is not None:
        return arg.convert
    if annotation is Path:
        return Path
    if annotation in (int, float):
        return annotation
    return None


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add an argparse argument for every field of options class ``cls`` (types, choices, defaults
    and help from the declaration)."""
    hints, groups, exclusive = _hints(cls), {}, {}
    for field in argument_fields(cls):
        arg = arg_of(field)
        target: Any = parser
        if arg.group:
            title = arg.group.format(where=getattr(cls, "DEVICE_WHERE", ""))  # e.g. "device overrides ({where})"
            if title not in groups:
                groups[title] = parser.add_argument_group(title)
            target = groups[title]
        if arg.exclusive:
            if arg.exclusive not in exclusive:
                exclusive[arg.exclusive] = target.add_mutually_exclusive_group()
            target = exclusive[arg.exclusive]
        names, kwargs = _argparse_spelling(field, arg, hints[field.name])
        target.add_argument(*names, **kwargs)
        if arg.negative:
            target.add_argument(arg.negative[0], dest=field.name, action="store_const", const=False,
                                help=arg.negative[1].replace("%", "%%"))
        for alias in arg.aliases:
            target.add_argument(alias, dest=field.name, type=kwargs.get("type"), action=_DeprecatedAlias,
                                new=flag_of(field), help=argparse.SUPPRESS)


def _default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default


def _argparse_spelling(field: dataclasses.Field, arg: Arg, annotation: Any) -> tuple[list[str], dict]:
    """Names and keyword arguments of ``add_argument`` for one field."""
    kind, nullable = _strip_none(annotation)
    kwargs: dict[str, Any] = {"help": arg.help.replace("%", "%%")}  # argparse %-formats help
    if arg.metavar:
        kwargs["metavar"] = arg.metavar
    if arg.positional:
        names = [field.name]
        if get_origin(kind) is list:
            kwargs["nargs"] = "+"
            kind = get_args(kind)[0]
        elif nullable:
            kwargs["nargs"] = "?"
    else:
        names = [n for n in (arg.short, flag_of(field)) if n]
        kwargs["dest"] = field.name
        kwargs["default"] = _default(field)
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            kwargs["required"] = True
    if arg.nargs:
        kwargs.update(nargs=arg.nargs, const=arg.const)
    if kind is bool:
        kwargs["action"] = argparse.BooleanOptionalAction if nullable else "store_true"
        return names, kwargs
    if arg.repeat:
        kwargs["action"] = "append"
        kind = get_args(kind)[0]
    if get_origin(kind) is Literal:
        kwargs["choices"] = list(get_args(kind))
    convert = _converter(arg, kind)
    if convert is not None:
        kwargs["type"] = convert
    return names, kwargs


class _DeprecatedAlias(argparse.Action):
    """An option's old spelling, kept for one release: stores into the new option's field and warns
    on stderr (``warning: ... use NEW``)."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        _warn_deprecated(option_string, self.new)
        setattr(namespace, self.dest, values)


def _warn_deprecated(old: str | None, new: str) -> None:
    print(f"warning: {old} is deprecated and goes in the next release; use {new}", file=sys.stderr)


def from_namespace(cls: type[_T], namespace: argparse.Namespace) -> _T:
    """An instance of options class ``cls`` from an argparse parse of :func:`add_arguments`' arguments."""
    return cls(**{f.name: getattr(namespace, f.name) for f in argument_fields(cls)})  # type: ignore[call-arg]


# ---------------------------------------------------------------------------------------------
# TOML tables (flow files)


def from_table(cls: type[_T], args: Sequence[Any], table: dict, where: str, args_where: str | None = None) -> _T:
    """An instance of options class ``cls`` from a flow's positional ``args`` and ``[options]`` table.

    Keys are field names (``chip_seed``) or option spellings (``chip-seed``); each value must have the
    field's type (a TOML list for a list option, e.g. ``sigmas = [0, 0.1]``) and passes the same range
    check as on the command line. A deprecated spelling warns as on the command line. Errors start
    with ``where`` (``args_where`` for the positional arguments).

    Raises:
        ConfigError: "WHERE: unknown key(s) ...", "WHERE: KEY = VALUE is not ...", a missing required
            option or positional argument, or two options of one exclusive set.
    """
    fields = argument_fields(cls)
    values = _positional_values(cls, fields, list(args), args_where or where)
    values.update(_option_values(cls, fields, table, where))
    missing = [flag_of(f) for f in fields if f.name not in values and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}: lacks {', '.join(missing)}")
    return cls(**values)


def _positional_values(cls: type, fields: list[dataclasses.Field], args: list, where: str) -> dict[str, Any]:
    """The positional fields' values from a flow's ``args`` list (a list field takes the rest)."""
    hints, values = _hints(cls), {}
    places = [f for f in fields if arg_of(f).positional]
    for field in places:
        if get_origin(_strip_none(hints[field.name])[0]) is list:
            values[field.name], args = _converted_value(field, hints[field.name], args, where), []
        elif args:
            values[field.name] = _converted_value(field, hints[field.name], args.pop(0), where)
    if args:
        raise ConfigError(f"{where}: {len(args)} value(s) too many; expected "
                          f"{' '.join(flag_of(f) for f in places) or 'none'}")
    return values


def _option_values(cls: type, fields: list[dataclasses.Field], table: dict, where: str) -> dict[str, Any]:
    """The option fields' values from a flow's ``[options]`` table, type-checked and converted."""
    hints = _hints(cls)
    spellings = _table_spellings(fields)
    renamed: dict[str, Any] = {}
    for key, value in table.items():
        field = spellings.get(str(key).replace("-", "_"))
        if field is not None and str(key).replace("-", "_") != field.name:
            _warn_deprecated(f"{where}: {key}", field.name)
        name = field.name if field is not None else str(key)
        if name in renamed:
            raise ConfigError(f"{where}: {name} is given twice (under two spellings); give it once")
        renamed[name] = value
    by_name = {f.name: f for f in fields if not arg_of(f).positional}
    schema = {name: _toml_type(hints[name]) for name in by_name}
    checked = check_table(renamed, schema, where)
    _check_exclusive(by_name, checked, where)
    return {name: _converted_value(by_name[name], hints[name], value, where) for name, value in checked.items()}


def _table_spellings(fields: list[dataclasses.Field]) -> dict[str, dataclasses.Field]:
    """Field by every key a flow may use for it: its name, and its deprecated aliases (warned)."""
    spellings = {}
    for field in fields:
        if arg_of(field).positional:
            continue
        spellings[field.name] = field
        for alias in arg_of(field).aliases:
            spellings[alias.lstrip("-").replace("-", "_")] = field
    return spellings


def _check_exclusive(by_name: dict[str, dataclasses.Field], values: dict, where: str) -> None:
    sets: dict[str, list[str]] = {}
    for name in values:
        key = arg_of(by_name[name]).exclusive
        if key:
            sets.setdefault(key, []).append(name)
    for names in sets.values():
        if len(names) > 1:
            raise ConfigError(f"{where}: {' and '.join(names)} exclude each other; give one")


def _toml_type(annotation: Any) -> Any:
    """The type a TOML value of a field of ``annotation`` must have (a path is a string)."""
    if annotation is Path:
        return str
    origin = get_origin(annotation)
    if origin is list:
        return list[_toml_type(get_args(annotation)[0])]  # type: ignore[misc]
    if origin in (typing.Union, type(int | None)):
        arms = tuple(_toml_type(a) for a in get_args(annotation))
        return typing.Union[arms]  # noqa: UP007 (a runtime Union)
    return annotation


def _converted_value(field: dataclasses.Field, annotation: Any, value: Any, where: str) -> Any:
    """A checked TOML value through the field's command-line converter (the same range checks)."""
    arg, (kind, _) = arg_of(field), _strip_none(annotation)
    if value is None or isinstance(value, bool):
        return value
    if get_origin(kind) is not list:
        return _converted(field, _converter(arg, kind), value, where)
    if arg.positional or arg.repeat:  # one word per item
        convert = _converter(arg, get_args(kind)[0])
        return [_converted(field, convert, v, where) for v in value]
    return _converted(field, arg.convert, ",".join(map(str, value)), where)  # a comma-separated option


def _converted(field: dataclasses.Field, convert: Callable[[str], Any] | None, value: Any, where: str) -> Any:
    if convert is None:
        return value
    try:
        return convert(str(value))
    except (argparse.ArgumentTypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {field.name} = {value!r} {exc}") from None


def check_options(options: Any, where: str) -> None:
    """Check an options instance built in Python as the command line checks its words: each value
    of its field's type (choices included) and through the field's converter (ranges).

    Raises:
        ConfigError: "WHERE: FIELD = VALUE is not ..." or "... must be ...".
    """
    hints = _hints(type(options))
    for field in argument_fields(type(options)):
        value = getattr(options, field.name)
        problem = type_problem(value, hints[field.name])
        if problem:
            raise ConfigError(f"{where}: {field.name} = {value!r} {problem}")
        _converted_value(field, hints[field.name], value, where)


def command_line(command: str, options: Any) -> str:
    """The ``bmcnn-hw`` command line that stands for ``options`` (values equal to the defaults left
    out; words quoted for a POSIX shell where they need it)."""
    words = ["bmcnn-hw", command]
    for field in argument_fields(type(options)):
        value = getattr(options, field.name)
        if arg_of(field).positional:
            words += [str(v) for v in value] if isinstance(value, list) else [] if value is None else [str(value)]
        elif value != _default(field):
            words += _option_words(field, value)
    return " ".join(words[:2] + [shlex.quote(word) for word in words[2:]])


def _option_words(field: dataclasses.Field, value: Any) -> list[str]:
    flag = flag_of(field)
    if value is True:
        return [flag]
    if value is False:
        negative = arg_of(field).negative
        return [negative[0] if negative else "--no-" + flag[2:]]
    if isinstance(value, list):
        if arg_of(field).repeat:
            return [w for v in value for w in (flag, str(v))]
        return [flag, ",".join(map(str, value))]
    return [flag, str(value)]
