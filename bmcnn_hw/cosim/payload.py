"""Packing stream payload fields into the words on ``*__payload`` ports, and back (no dependencies).

``fields`` maps a field name to ``[offset, width, signed]``, as
:func:`bmcnn_hw.rtl.streams.layout_fields` gives it for a payload layout.
"""

from __future__ import annotations


def pack(fields: dict, names: list, values: list) -> int:
    """The payload word holding ``values`` in the ``names`` fields (two's complement)."""
    word = 0
    for name, value in zip(names, values, strict=True):
        offset, width, _ = fields[name]
        word |= (int(value) & ((1 << width) - 1)) << offset
    return word


def unpack(fields: dict, names: list, word: int) -> list:
    """The ``names`` fields of a payload word (signed fields sign-extended)."""
    values = []
    for name in names:
        offset, width, signed = fields[name]
        value = (word >> offset) & ((1 << width) - 1)
        values.append(value - (1 << width) if signed and value >> (width - 1) else value)
    return values
