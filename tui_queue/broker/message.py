"""Messages as the broker keeps them: the client's raw properties, passed through untouched."""

from __future__ import annotations

import re
import struct
from typing import Any

from tui_queue.broker.codec import Reader, Table, Typed, encode_table

_CONTENT_HEADER = struct.Struct(">HHQ")

# Basic property flag bits, in wire order.
_FLAG_CONTENT_TYPE = 0x8000
_FLAG_CONTENT_ENCODING = 0x4000
_FLAG_HEADERS = 0x2000
_FLAG_DELIVERY_MODE = 0x1000


class Message:
    """One published message. Queues hold it by reference; the content is never re-encoded.

    `properties` is the content header's property section (flags and fields) exactly as the
    publisher sent it, as RabbitMQ passes it through.
    """

    __slots__ = ("exchange", "routing_key", "properties", "body", "persistent")

    def __init__(
        self, exchange: str, routing_key: str, properties: bytes, body: bytes, persistent: bool
    ) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.properties = properties
        self.body = body
        self.persistent = persistent

    def content_header(self, properties: bytes | None = None) -> bytes:
        """The content header payload (class 60) for this message."""
        props = self.properties if properties is None else properties
        return _CONTENT_HEADER.pack(60, 0, len(self.body)) + props


class Entry:
    """A message's place in one queue; the same message routed to two queues has two entries."""

    __slots__ = ("seq", "message", "redelivered", "delivery_count", "store_id")

    def __init__(self, seq: int, message: Message) -> None:
        self.seq = seq
        self.message = message
        self.redelivered = False
        # Quorum queues report returns as the x-delivery-count header.
        self.delivery_count = 0
        # The durable store's row for this entry, while it has one.
        self.store_id: int | None = None


def _skip_shortstr(reader: Reader) -> None:
    reader.pos += 1 + reader.data[reader.pos]
    if reader.pos > reader.end:
        raise ValueError("truncated")


def _headers_span(properties: bytes) -> tuple[int, int, int]:
    """Flags and the [start, end) byte range where the headers table is or would go."""
    reader = Reader(properties)
    flags = reader.short()
    while reader.data[reader.pos - 1] & 1:  # continuation flag words: none defined for basic
        reader.short()
    if flags & _FLAG_CONTENT_TYPE:
        _skip_shortstr(reader)
    if flags & _FLAG_CONTENT_ENCODING:
        _skip_shortstr(reader)
    start = reader.pos
    if flags & _FLAG_HEADERS:
        size = reader.long()
        reader.pos += size
    return flags, start, reader.pos


def is_persistent(properties: bytes) -> bool:
    """delivery_mode == 2; a property section that cannot be read counts as transient."""
    try:
        flags, _, end = _headers_span(properties)
        if not flags & _FLAG_DELIVERY_MODE:
            return False
        return properties[end] == 2
    except (ValueError, IndexError):
        return False


def headers_of(properties: bytes) -> Table:
    try:
        flags, start, _ = _headers_span(properties)
        if not flags & _FLAG_HEADERS:
            return {}
        return Reader(properties, start).table()
    except (ValueError, IndexError):
        return {}


def with_header(properties: bytes, key: str, value: Typed) -> bytes:
    """The property section with one header set, every other byte as the publisher sent it."""
    flags, start, end = _headers_span(properties)
    table: Table = {}
    if flags & _FLAG_HEADERS:
        table = dict(Reader(properties, start, end).table())
    table[key] = value
    # RabbitMQ re-encodes the headers it touches sorted by key.
    table = dict(sorted(table.items()))
    new_flags = flags | _FLAG_HEADERS
    return (
        new_flags.to_bytes(2, "big") + properties[2:start] + encode_table(table) + properties[end:]
    )


# Basic properties in flag order (bit 15 first) with their wire types.
_PROPERTY_FIELDS = (
    ("content_type", "shortstr"),
    ("content_encoding", "shortstr"),
    ("headers", "table"),
    ("delivery_mode", "octet"),
    ("priority", "octet"),
    ("correlation_id", "shortstr"),
    ("reply_to", "shortstr"),
    ("expiration", "shortstr"),
    ("message_id", "shortstr"),
    ("timestamp", "longlong"),
    ("type", "shortstr"),
    ("user_id", "shortstr"),
    ("app_id", "shortstr"),
    ("cluster_id", "shortstr"),
)


def basic_properties(properties: bytes, *, with_headers: bool = True) -> dict[str, Any]:
    """The properties present in a property section, by name (short strings as raw bytes).

    `with_headers=False` skips over the headers table without decoding it (and leaves it out).
    Raises ValueError when the section cannot be read.
    """
    try:
        reader = Reader(properties)
        flags = reader.short()
        result: dict[str, Any] = {}
        for bit, (name, kind) in zip(range(15, 1, -1), _PROPERTY_FIELDS, strict=True):
            if not flags & (1 << bit):
                continue
            if kind == "shortstr":
                result[name] = reader.raw(reader.octet())
            elif kind == "octet":
                result[name] = reader.octet()
            elif kind == "longlong":
                result[name] = reader.longlong()
            elif with_headers:
                result[name] = reader.table()
            else:
                size = reader.long()
                if reader.pos + size > reader.end:
                    raise ValueError("truncated")
                reader.pos += size
        return result
    except IndexError as error:
        raise ValueError("truncated") from error


# rabbit_misc:check_expiry: ten years, in milliseconds.
MAX_EXPIRATION = 315_360_000_000
_LEADING_INTEGER = re.compile(rb"[+-]?[0-9]+")


def expiration_problem(raw: bytes) -> str | None:
    """Why RabbitMQ refuses an expiration property, printed as its ~p, or None.

    rabbit_basic:parse_expiration reads it with string:to_integer: an optional sign and digits,
    nothing before and nothing after.
    """
    match = _LEADING_INTEGER.match(raw)
    if match is None:
        return "no_integer"
    rest = raw[match.end() :]
    if rest:
        return f"{{leftover_string,{_erlang_charlist(rest)}}}"
    value = int(match.group())
    if value < 0:
        return f"{{value_negative,{value}}}"
    if value > MAX_EXPIRATION:
        return f"{{value_too_large,{value}}}"
    return None


def _erlang_charlist(data: bytes) -> str:
    """~p of a list of bytes: a quoted string when printable ASCII, else a list of integers."""
    if all(32 <= b <= 126 for b in data):
        return '"' + data.decode("ascii").replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "[" + ",".join(str(b) for b in data) + "]"
