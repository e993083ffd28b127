"""The course's own way of printing tables and packets, for the cells whose output nbval checks.

Why: a checked cell's recorded output is compared with a fresh run, character by character. If
it prints a library's own representation (a pandas DataFrame's ``to_string()``, a scapy
``PacketList`` or ``show()``), the next release of that library can change the page without the
course changing: pandas 3 printed ``NaN`` where pandas 2 printed ``None``. Here the course
decides, and states, every choice:

- the columns, in the order given;
- a missing value (None, NaN, pandas' NA or NaT) is always :data:`MISSING`;
- integers in decimal, or in hex for the columns named as bit patterns;
- other numbers with a stated number of decimals, per column;
- numbers right-aligned, text left-aligned, two spaces between columns.

Only plain values are read from the frame or the packet (``tolist()``, ``getfieldval``), never a
library's formatting of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from scapy.packet import Packet

# scapy is imported only where a packet is printed, so that a lab that prints only tables (lab
# 05) does not load it.

#: how a missing value is shown, everywhere
MISSING = "-"


def is_missing(value: Any) -> bool:
    """None, NaN, pandas' NA and NaT: the values a table shows as :data:`MISSING`."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return isinstance(value, float) and math.isnan(value)
    except TypeError:
        return False


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds; anything else as it is."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    return value


def cell(value: Any, *, decimals: int = 2, hex_digits: int | None = None) -> str:
    """One value as the course prints it (see the module's rules)."""
    value = _plain(value)
    if is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        if hex_digits is not None:
            return f"0x{value:0{hex_digits}x}"
        return str(value)
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    if isinstance(value, bytes | bytearray):
        return value.hex(" ")
    return str(value)


def _numeric(values: list[Any]) -> bool:
    present = [_plain(v) for v in values if not is_missing(_plain(v))]
    return bool(present) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                 for v in present)


def table(frame: pd.DataFrame, columns: Sequence[str] | None = None, *,
          decimals: int | Mapping[str, int] = 2, hex_columns: Mapping[str, int] | None = None,
          index: str | None = None, max_width: int | None = None) -> str:
    """``frame`` as text, by the course's rules: the ``columns`` given (all by default),
    ``decimals`` for the numbers that are not integers (one number, or one per column, 2 for
    columns not named), ``hex_columns`` mapping a column to its hex digits, the frame's index
    as a first column when ``index`` names it, and text cut to ``max_width`` characters."""
    columns = list(frame.columns if columns is None else columns)
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise KeyError(f"no column {absent} in the frame; it has {list(frame.columns)}")
    hex_columns = dict(hex_columns or {})
    data: dict[str, list[Any]] = {}
    if index is not None:
        data[index] = list(frame.index)
    for column in columns:
        data[column] = frame[column].tolist()
    text: dict[str, list[str]] = {}
    right: dict[str, bool] = {}
    for column, values in data.items():
        digits = decimals.get(column, 2) if isinstance(decimals, Mapping) else decimals
        shown = [cell(v, decimals=digits, hex_digits=hex_columns.get(column)) for v in values]
        if max_width is not None:
            shown = [s if len(s) <= max_width else s[: max_width - 1] + "…" for s in shown]
        text[column] = shown
        right[column] = _numeric(values) or column in hex_columns
    widths = {c: max([len(str(c))] + [len(s) for s in text[c]]) for c in text}

    def line(cells: Iterable[tuple[str, str]]) -> str:
        parts = [s.rjust(widths[c]) if right[c] else s.ljust(widths[c]) for c, s in cells]
        return "  ".join(parts).rstrip()

    lines = [line((c, str(c)) for c in text)]
    for i in range(len(frame)):
        lines.append(line((c, text[c][i]) for c in text))
    return "\n".join(lines)


def _layers(pkt: Packet) -> list[Packet]:
    """The packet's layers in order, a body carried in a field (the course's ``numerics``)
    right after the layer that holds it."""
    from scapy.packet import Packet

    out: list[Packet] = []
    layer: Any = pkt
    while isinstance(layer, Packet) and layer.fields_desc is not None and len(layer.fields_desc):
        out.append(layer)
        for f in layer.fields_desc:
            value = layer.getfieldval(f.name)
            if isinstance(value, Packet):
                out.extend(_layers(value))
        layer = layer.payload
    return out


#: fields that are bit patterns, shown in hex
HEX_FIELDS = {"magic": 4, "chksum": 4, "tag": None}


def packet_fields(pkt: Packet, *, layers: Sequence[str] | None = None,
                  fields: Mapping[str, Sequence[str]] | None = None, decimals: int = 2) -> str:
    """A packet, layer by layer and field by field, in the course's layout: the layer's name,
    then one ``name  value`` line per field. ``layers`` picks layers by name (all by default),
    ``fields`` the fields of a layer (all by default). Numbers that are not integers get
    ``decimals`` decimals (the telemetry body travels as 32-bit floats, whose exact values have
    digits nobody sent); bit patterns (:data:`HEX_FIELDS`) are in hex; a body carried in a
    field is shown as a layer of its own; a conditional field the packet does not carry is
    left out."""
    from scapy.fields import ConditionalField
    from scapy.packet import Packet

    fields = dict(fields or {})
    lines: list[str] = []
    for layer in _layers(pkt):
        if layers is not None and layer.name not in layers:
            continue
        # a conditional field absent from this packet (the tag of an unsigned datagram) is not
        # shown with a default value it never had on the wire
        names = fields.get(layer.name) or [
            f.name for f in layer.fields_desc
            if not (isinstance(f, ConditionalField) and f.name not in layer.fields)]
        lines.append(layer.name)
        width = max(len(n) for n in names)
        for name in names:
            value = _plain(layer.getfieldval(name))
            if isinstance(value, Packet):
                shown = f"{value.name}, below"
            elif isinstance(value, list):
                shown = ", ".join(cell(v, decimals=decimals) for v in value) or "none"
            elif name in HEX_FIELDS and isinstance(value, int):
                shown = cell(value, hex_digits=HEX_FIELDS[name] or 2)
            elif not isinstance(value, int | float | bytes | str | type(None)):
                try:
                    shown = cell(int(value))        # a flags or enum field's number
                except (TypeError, ValueError):
                    shown = str(value)
            else:
                shown = cell(value, decimals=decimals)
            lines.append(f"  {name.ljust(width)}  {shown}")
    return "\n".join(lines)


#: TCP's flag bits, lowest first, with the letters RFC 793 and tcpdump use
TCP_FLAGS = "FSRPAUEC"


def tcp_flags(flags: Any) -> str:
    """TCP flags as letters in a fixed order (``S``, ``SA``, ``PA``, ``FA``, ``RA``), from the
    flags' number: a SYN-ACK is 0x12, S and A."""
    bits = int(flags)
    return "".join(letter for i, letter in enumerate(TCP_FLAGS) if bits & (1 << i)) or "."
