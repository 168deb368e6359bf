"""AMQP 0-9-1 wire codec: field tables that keep their types, and methods described by pamqp.

pamqp supplies the protocol's method catalogue (class/method ids, field names and field types).
Decoding and encoding run here, on offsets into one buffer, because the broker needs what pamqp
drops: the wire type of every table value (RabbitMQ names it in equivalence errors), names echoed
back byte for byte, and no client-side validation on what the server sends.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pamqp import commands

from tui_queue.broker.errors import erlang_binary, frame_error

_U8 = struct.Struct(">B")
_I8 = struct.Struct(">b")
_U16 = struct.Struct(">H")
_I16 = struct.Struct(">h")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
METHOD_HEADER = struct.Struct(">HH")
FRAME_HEADER = struct.Struct(">BHI")
FRAME_END = b"\xce"


@dataclass(frozen=True, slots=True)
class Typed:
    """A field-table value with its AMQP type, named as RabbitMQ names it."""

    type: str
    value: Any


# A table keeps the first value of each key (RabbitMQ looks keys up with keyfind).
Table = dict[str, Typed]


def decode_str(raw: bytes) -> str:
    # Names are binary to RabbitMQ; surrogateescape lets any bytes round-trip.
    return raw.decode("utf-8", "surrogateescape")


def encode_str(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


class Reader:
    """Reads AMQP primitives from a buffer; any overrun is a FRAME_ERROR."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def _take(self, size: int) -> int:
        start = self.pos
        if start + size > self.end:
            raise ValueError("truncated")
        self.pos = start + size
        return start

    def octet(self) -> int:
        return int(_U8.unpack_from(self.data, self._take(1))[0])

    def short(self) -> int:
        return int(_U16.unpack_from(self.data, self._take(2))[0])

    def long(self) -> int:
        return int(_U32.unpack_from(self.data, self._take(4))[0])

    def longlong(self) -> int:
        return int(_U64.unpack_from(self.data, self._take(8))[0])

    def raw(self, size: int) -> bytes:
        start = self._take(size)
        return bytes(self.data[start : start + size])

    def shortstr(self) -> str:
        return decode_str(self.raw(self.octet()))

    def longstr(self) -> bytes:
        return self.raw(self.long())

    def table(self) -> Table:
        size = self.long()
        end = self._take(size) + size
        inner = Reader(self.data, self.pos - size, end)
        result: Table = {}
        while inner.pos < end:
            key = inner.shortstr()
            value = inner.field_value()
            result.setdefault(key, value)
        return result

    def array(self) -> list[Typed]:
        size = self.long()
        end = self._take(size) + size
        inner = Reader(self.data, self.pos - size, end)
        values = []
        while inner.pos < end:
            values.append(inner.field_value())
        return values

    def field_value(self) -> Typed:
        kind = self.raw(1)
        decoder = _FIELD_DECODERS.get(kind)
        if decoder is None:
            raise ValueError(f"unknown field type {kind!r}")
        name, read = decoder
        return Typed(name, read(self))


def _read_struct(codec: struct.Struct) -> Callable[[Reader], Any]:
    def read(reader: Reader) -> Any:
        return codec.unpack_from(reader.data, reader._take(codec.size))[0]

    return read


def _read_decimal(reader: Reader) -> Decimal:
    scale = reader.octet()
    value = _I32.unpack_from(reader.data, reader._take(4))[0]
    return Decimal(value).scaleb(-scale)


_FIELD_DECODERS: dict[bytes, tuple[str, Callable[[Reader], Any]]] = {
    b"t": ("bool", lambda r: r.octet() != 0),
    b"b": ("byte", _read_struct(_I8)),
    b"B": ("unsignedbyte", _read_struct(_U8)),
    b"s": ("short", _read_struct(_I16)),
    b"u": ("unsignedshort", _read_struct(_U16)),
    b"I": ("signedint", _read_struct(_I32)),
    b"i": ("unsignedint", _read_struct(_U32)),
    b"l": ("long", _read_struct(_I64)),
    # RabbitMQ reads `L` as a signed 64-bit long too (and writes it back as `l`).
    b"L": ("long", _read_struct(_I64)),
    b"f": ("float", _read_struct(_F32)),
    b"d": ("double", _read_struct(_F64)),
    b"D": ("decimal", _read_decimal),
    b"S": ("longstr", lambda r: r.longstr()),
    b"x": ("binary", lambda r: r.longstr()),
    b"T": ("timestamp", lambda r: r.longlong()),
    b"F": ("table", lambda r: r.table()),
    b"A": ("array", lambda r: r.array()),
    b"V": ("void", lambda r: None),
}


def encode_shortstr(text: str | bytes) -> bytes:
    raw = encode_str(text) if isinstance(text, str) else text
    if len(raw) > 255:
        raise ValueError("shortstr over 255 bytes")
    return _U8.pack(len(raw)) + raw


def encode_longstr(data: str | bytes) -> bytes:
    raw = encode_str(data) if isinstance(data, str) else data
    return _U32.pack(len(raw)) + raw


# Fixed-size field types: their tag and how their value packs.
_FIXED_FIELDS: dict[str, tuple[bytes, struct.Struct]] = {
    "long": (b"l", _I64),
    "signedint": (b"I", _I32),
    "unsignedint": (b"i", _U32),
    "short": (b"s", _I16),
    "unsignedshort": (b"u", _U16),
    "byte": (b"b", _I8),
    "unsignedbyte": (b"B", _U8),
    "float": (b"f", _F32),
    "double": (b"d", _F64),
    "timestamp": (b"T", _U64),
}


def encode_field_value(value: Typed) -> bytes:
    kind = value.type
    v = value.value
    fixed = _FIXED_FIELDS.get(kind)
    if fixed is not None:
        return fixed[0] + fixed[1].pack(v)
    if kind == "longstr":
        return b"S" + encode_longstr(v)
    if kind == "bool":
        return b"t" + _U8.pack(1 if v else 0)
    if kind == "table":
        return b"F" + encode_table(v)
    if kind == "binary":
        return b"x" + encode_longstr(v)
    if kind == "array":
        inner = b"".join(encode_field_value(item) for item in v)
        return b"A" + _U32.pack(len(inner)) + inner
    if kind == "void":
        return b"V"
    if kind == "decimal":
        sign, digits, exponent = Decimal(v).as_tuple()
        unscaled = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
        return b"D" + _U8.pack(-int(exponent)) + _I32.pack(unscaled)
    raise ValueError(f"cannot encode field type {kind}")


def encode_table(table: Table) -> bytes:
    inner = b"".join(encode_shortstr(key) + encode_field_value(v) for key, v in table.items())
    return _U32.pack(len(inner)) + inner


def typed_table(values: dict[str, Any]) -> Table:
    """Types plain Python values the way RabbitMQ's own tables are typed."""
    result: Table = {}
    for key, value in values.items():
        if isinstance(value, bool):
            result[key] = Typed("bool", value)
        elif isinstance(value, int):
            result[key] = Typed("long", value)
        elif isinstance(value, dict):
            result[key] = Typed("table", typed_table(value))
        else:
            result[key] = Typed("longstr", str(value))
    return result


# ---------------------------------------------------------------------------- methods


@dataclass(frozen=True, slots=True)
class MethodSpec:
    cls: type
    class_id: int
    method_id: int
    fields: tuple[tuple[str, str], ...]


def _build_catalogue() -> dict[int, MethodSpec]:
    catalogue: dict[int, MethodSpec] = {}
    for index, cls in commands.INDEX_MAPPING.items():
        fields = tuple((name, cls.amqp_type(name)) for name in cls.__slots__)
        catalogue[index] = MethodSpec(cls, index >> 16, index & 0xFFFF, fields)
    return catalogue


CATALOGUE: dict[int, MethodSpec] = _build_catalogue()
SPEC_BY_CLASS: dict[type, MethodSpec] = {spec.cls: spec for spec in CATALOGUE.values()}


def method_ids(cls: type) -> tuple[int, int]:
    spec = SPEC_BY_CLASS[cls]
    return spec.class_id, spec.method_id


def decode_method(payload: bytes) -> Any:
    """Decode a method frame's payload into an (unvalidated) pamqp command object."""
    if len(payload) < 4:
        raise frame_error("cannot decode method frame: too short")
    class_id, method_id = METHOD_HEADER.unpack_from(payload, 0)
    spec = CATALOGUE.get((class_id << 16) | method_id)
    if spec is None:
        raise UnknownMethod(class_id, method_id)
    method = spec.cls.__new__(spec.cls)
    reader = Reader(payload, 4)
    bits = 0
    bit_index = 8
    try:
        for name, kind in spec.fields:
            if kind == "bit":
                if bit_index == 8:
                    bits = reader.octet()
                    bit_index = 0
                setattr(method, name, bool(bits & (1 << bit_index)))
                bit_index += 1
                continue
            bit_index = 8
            setattr(method, name, _METHOD_FIELD_READERS[kind](reader))
    except ValueError as exc:
        raise frame_error(
            f"cannot decode {erlang_binary(payload[4:])}", class_id, method_id
        ) from exc
    return method


class UnknownMethod(Exception):
    def __init__(self, class_id: int, method_id: int) -> None:
        super().__init__(f"unknown method {class_id}/{method_id}")
        self.class_id = class_id
        self.method_id = method_id


_METHOD_FIELD_READERS: dict[str, Callable[[Reader], Any]] = {
    "octet": Reader.octet,
    "short": Reader.short,
    "long": Reader.long,
    "longlong": Reader.longlong,
    "timestamp": Reader.longlong,
    "shortstr": Reader.shortstr,
    "longstr": Reader.longstr,
    "table": Reader.table,
}


def encode_method(cls: type, channel: int, **values: Any) -> bytes:
    """A whole method frame; fields not given take zero/empty values."""
    spec = SPEC_BY_CLASS[cls]
    parts = [METHOD_HEADER.pack(spec.class_id, spec.method_id)]
    bits = 0
    bit_index = -1
    for name, kind in spec.fields:
        value = values.get(name)
        if kind == "bit":
            if bit_index < 0:
                bits, bit_index = 0, 0
            if value:
                bits |= 1 << bit_index
            bit_index += 1
            if bit_index == 8:
                parts.append(_U8.pack(bits))
                bit_index = -1
            continue
        if bit_index >= 0:
            parts.append(_U8.pack(bits))
            bit_index = -1
        parts.append(_encode_method_field(kind, value))
    if bit_index >= 0:
        parts.append(_U8.pack(bits))
    payload = b"".join(parts)
    return FRAME_HEADER.pack(1, channel, len(payload)) + payload + FRAME_END


def _encode_method_field(kind: str, value: Any) -> bytes:
    if kind == "shortstr":
        return encode_shortstr(value or "")
    if kind == "longstr":
        return encode_longstr(value or b"")
    if kind == "octet":
        return _U8.pack(value or 0)
    if kind == "short":
        return _U16.pack(value or 0)
    if kind == "long":
        return _U32.pack(value or 0)
    if kind in ("longlong", "timestamp"):
        return _U64.pack(value or 0)
    if kind == "table":
        return encode_table(value or {})
    raise ValueError(f"cannot encode method field type {kind}")


def clip_reply_text(text: str) -> str:
    """RabbitMQ cuts reply texts over 255 bytes to 252 bytes plus '...'."""
    raw = encode_str(text)
    if len(raw) <= 255:
        return text
    return decode_str(raw[:252]) + "..."
