"""bmcnn_hw.tables: the one table reader every config file goes through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from bmcnn_hw.errors import ConfigError
from bmcnn_hw.tables import check_table, from_table, type_problem


@dataclass(frozen=True)
class _Example:
    count: int
    gain: float = 1.0
    mode: Literal["fast", "exact"] = "exact"
    label: str | None = None
    sizes: tuple = ()
    on: bool = False

    def __post_init__(self):
        if self.count < 0:
            raise ConfigError(f"count must be >= 0, not {self.count}")


@pytest.mark.parametrize(("value", "annotation", "problem"), [
    (3, int, None), (True, int, "is not a whole number"), (2.0, int, "is not a whole number"),
    (3, float, None), (False, float, "is not a number"), ("1k", float, "is not a number"),
    (True, bool, None), (1, bool, "is not true or false"),
    ("exact", Literal["fast", "exact"], None), ("slow", Literal["fast", "exact"], "is not one of 'fast', 'exact'"),
    (1, Literal[1, 2], None), (True, Literal[1, 2], "is not one of 1, 2"),
    ("auto", bool | str, None), (3, bool | str, "is not true or false or a string"),
    (None, str | None, None), ([1, 2], tuple, None), ((1,), list[int], None),
    ("ab", list[str], "is not a list (each item a string)"),
    ([1, "x"], list[int], "is not a list (each item a whole number)"), ([1, 2], tuple[int, ...], None),
    ({}, dict, None), ([], dict, "is not a table"),
])
def test_a_value_is_checked_against_its_declared_type(value, annotation, problem):
    assert type_problem(value, annotation) == problem


def test_a_table_becomes_the_dataclass_or_one_line_naming_where():
    assert from_table(_Example, {"count": 2, "gain": 3, "sizes": [1, 2]}, "f.toml: [x]") == _Example(2, 3, sizes=[1, 2])
    cases = [
        ({"count": 1, "gian": 2.0}, r"^f\.toml: \[x\]: unknown key\(s\) gian; expected some of count, gain, label, "),
        ({"gain": 2.0}, r"^f\.toml: \[x\]: lacks count; expected count, gain, mode, label, sizes, on$"),
        ({"count": 1, "mode": "quick"}, r"^f\.toml: \[x\]: mode = 'quick' is not one of 'fast', 'exact'$"),
        ({"count": 1, "on": "yes"}, r"^f\.toml: \[x\]: on = 'yes' is not true or false$"),
        ({"count": -1}, r"^f\.toml: \[x\]: count must be >= 0, not -1$"),  # the class's own check, prefixed
        (["count", 1], r"^f\.toml: \[x\]: must be a table of key = value, not list$"),
    ]
    for table, message in cases:
        with pytest.raises(ConfigError, match=message):
            from_table(_Example, table, "f.toml: [x]")  # count, which has no default, is required
    with pytest.raises(ConfigError, match=r"^f\.toml: \[x\]: lacks count, gain; "):  # and what the caller adds
        from_table(_Example, {}, "f.toml: [x]", required=("gain",))


def test_check_table_takes_a_plain_schema():
    schema = {"command": Literal["compile", "spice"], "args": list[str]}
    assert check_table({"command": "spice"}, schema, "flow.toml: [flow]") == {"command": "spice"}
    with pytest.raises(ConfigError, match=r"^flow\.toml: \[flow\]: args = 'b' is not a list \(each item a string\)$"):
        check_table({"command": "spice", "args": "b"}, schema, "flow.toml: [flow]")
