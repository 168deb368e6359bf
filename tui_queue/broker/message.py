"""Messages as the broker keeps them, and their property sections: checked the way RabbitMQ
decodes them, read for what routing needs, and rewritten field by field only where RabbitMQ
rewrites them (every other byte goes out as the publisher sent it)."""

from __future__ import annotations

import re
import struct

from tui_queue.broker.codec import Reader, Table, Typed, encode_table

_CONTENT_HEADER = struct.Struct(">HHQ")

# Basic property flag bits, in wire order.
_FLAG_CONTENT_TYPE = 0x8000
_FLAG_CONTENT_ENCODING = 0x4000
_FLAG_HEADERS = 0x2000


class Message:
    """One published message. Queues hold it by reference; the content is never re-encoded.

    `properties` is the content header's property section (flags and fields) exactly as the
    publisher sent it, as RabbitMQ passes it through (it rewrites only what it must: BCC taken
    out, a direct reply-to address filled in, dead-letter headers).
    """

    __slots__ = (
        "exchange",
        "routing_key",
        "properties",
        "body",
        "persistent",
        "ttl",
        "priority",
        "extra_keys",
    )

    def __init__(
        self, exchange: str, routing_key: str, properties: bytes, body: bytes, persistent: bool
    ) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.properties = properties
        self.body = body
        self.persistent = persistent
        # The expiration property in milliseconds, when there is one.
        self.ttl: int | None = None
        # The priority property (0 when absent); only priority queues look at it.
        self.priority = 0
        # Routing keys from the CC and BCC headers: RabbitMQ routes and dead-letters with them.
        self.extra_keys: tuple[str, ...] = ()

    def content_header(self, properties: bytes | None = None) -> bytes:
        """The content header payload (class 60) for this message."""
        props = self.properties if properties is None else properties
        return _CONTENT_HEADER.pack(60, 0, len(self.body)) + props


class Entry:
    """A message's place in one queue; the same message routed to two queues has two entries."""

    __slots__ = ("seq", "message", "redelivered", "delivery_count", "store_id", "expires_at")

    def __init__(self, seq: int, message: Message) -> None:
        self.seq = seq
        self.message = message
        self.redelivered = False
        # Quorum queues report returns as the x-delivery-count header.
        self.delivery_count = 0
        # The durable store's row for this entry, while it has one.
        self.store_id: int | None = None
        # When the message expires in this queue (event loop time), if it has a TTL here.
        self.expires_at: float | None = None


def _skip_shortstr(reader: Reader) -> None:
    reader.pos += 1 + reader.data[reader.pos]
    if reader.pos > reader.end:
        raise ValueError("truncated")


def _headers_span(properties: bytes) -> tuple[int, int, int]:
    """Flags and the [start, end) byte range where the headers table is or would go."""
    reader = Reader(properties)
    # The lowest bit would announce a continuation word; RabbitMQ's decoder ignores it.
    flags = reader.short()
    if flags & _FLAG_CONTENT_TYPE:
        _skip_shortstr(reader)
    if flags & _FLAG_CONTENT_ENCODING:
        _skip_shortstr(reader)
    start = reader.pos
    if flags & _FLAG_HEADERS:
        size = reader.long()
        reader.pos += size
    return flags, start, reader.pos


def headers_of(properties: bytes) -> Table:
    try:
        flags, start, _ = _headers_span(properties)
        if not flags & _FLAG_HEADERS:
            return {}
        return Reader(properties, start).table()
    except (ValueError, IndexError, RecursionError):
        # RecursionError: tables nested thousands deep; they are read as no headers at all.
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
    new_flags = (flags | _FLAG_HEADERS) & _FIELD_BITS
    return (
        new_flags.to_bytes(2, "big") + properties[2:start] + encode_table(table) + properties[end:]
    )


# Basic property fields by flag bit (bit 15 first on the wire) and their wire types.
_SHORTSTR, _OCTET, _LONGLONG, _TABLE = range(4)
_FIELD_KINDS = {
    15: _SHORTSTR,  # content_type
    14: _SHORTSTR,  # content_encoding
    13: _TABLE,  # headers
    12: _OCTET,  # delivery_mode
    11: _OCTET,  # priority
    10: _SHORTSTR,  # correlation_id
    9: _SHORTSTR,  # reply_to
    8: _SHORTSTR,  # expiration
    7: _SHORTSTR,  # message_id
    6: _LONGLONG,  # timestamp
    5: _SHORTSTR,  # type
    4: _SHORTSTR,  # user_id
    3: _SHORTSTR,  # app_id
    2: _SHORTSTR,  # cluster_id
}
BIT_HEADERS = 13
BIT_REPLY_TO = 9
BIT_EXPIRATION = 8
# RabbitMQ's decoder ignores the two lowest flag bits (no continuation word for basic).
_FIELD_BITS = 0xFFFC


class Undecodable(ValueError):
    """A property section RabbitMQ's decoder would crash on (its channel dies: 541)."""


class PropertyInfo:
    """What the broker needs to know of a publish's properties, read in one pass."""

    __slots__ = ("delivery_mode", "priority", "expiration", "user_id", "reply_to", "headers")

    def __init__(self) -> None:
        self.delivery_mode: int | None = None
        self.priority: int | None = None
        self.expiration: bytes | None = None
        self.user_id: bytes | None = None
        self.reply_to: bytes | None = None
        # [start, end) of the headers field (its length prefix included).
        self.headers: tuple[int, int] | None = None


def inspect_properties(raw: bytes) -> PropertyInfo:
    """Check a property section the way RabbitMQ decodes it and pick out what routing needs.

    Raises Undecodable for anything rabbit_framing_amqp_0_9_1:decode_properties rejects: a
    truncated field, bytes left over, a table or array RabbitMQ cannot parse. Tables are walked,
    not built, so a publish pays for no objects.
    """
    end = len(raw)
    if end < 2:
        raise Undecodable("no property flags")
    info = PropertyInfo()
    bits = ((raw[0] << 8) | raw[1]) & _FIELD_BITS
    pos = 2
    while bits:
        bit = bits.bit_length() - 1
        bits ^= 1 << bit
        kind = _FIELD_KINDS[bit]
        if kind == _SHORTSTR:
            if pos >= end:
                raise Undecodable("truncated")
            start = pos + 1
            pos = start + raw[pos]
            if pos > end:
                raise Undecodable("truncated")
            if bit == BIT_REPLY_TO:
                info.reply_to = raw[start:pos]
            elif bit == BIT_EXPIRATION:
                info.expiration = raw[start:pos]
            elif bit == 4:
                info.user_id = raw[start:pos]
        elif kind == _OCTET:
            if pos >= end:
                raise Undecodable("truncated")
            if bit == 12:
                info.delivery_mode = raw[pos]
            else:
                info.priority = raw[pos]
            pos += 1
        elif kind == _LONGLONG:
            pos += 8
            if pos > end:
                raise Undecodable("truncated")
        else:
            start = pos
            pos = _sized_end(raw, pos, end)
            _check_table(raw, start + 4, pos)
            info.headers = (start, pos)
    if pos != end:
        raise Undecodable("bytes after the last property")
    return info


def _sized_end(data: bytes, pos: int, end: int) -> int:
    """Where a value with a 32-bit length prefix at `pos` ends."""
    if pos + 4 > end:
        raise Undecodable("truncated")
    stop = pos + 4 + int.from_bytes(data[pos : pos + 4], "big")
    if stop > end:
        raise Undecodable("truncated")
    return stop


# Field value types rabbit_binary_parser accepts, by tag: fixed sizes, then length-prefixed ones.
_FIXED_SIZES = {
    ord(tag): size
    for tag, size in (
        ("t", 1), ("b", 1), ("B", 1), ("s", 2), ("u", 2), ("I", 4), ("i", 4), ("f", 4),
        ("l", 8), ("L", 8), ("d", 8), ("T", 8), ("D", 5), ("V", 0),
    )
}  # fmt: skip
_TAG_TABLE, _TAG_ARRAY, _TAG_LONGSTR, _TAG_BINARY, _TAG_FLOAT, _TAG_DOUBLE = (
    ord(tag) for tag in "FASxfd"
)


def _check_table(data: bytes, pos: int, end: int) -> None:
    """Walk a table's entries, and every table and array nested in them, as RabbitMQ parses
    them. A loop with a stack rather than recursion: nesting is only bounded by the frame."""
    _check_fields(data, pos, end, True)


def _check_fields(data: bytes, pos: int, end: int, in_table: bool) -> None:
    enclosing: list[tuple[int, bool]] = []
    while True:
        if pos == end:
            if not enclosing:
                return
            end, in_table = enclosing.pop()
            continue
        if in_table:
            pos += 1 + data[pos]  # the key: a short string
            if pos >= end:
                raise Undecodable("truncated")
        tag = data[pos]
        pos += 1
        size = _FIXED_SIZES.get(tag)
        if size is not None:
            if pos + size > end:
                raise Undecodable("truncated")
            # Erlang's float patterns do not match NaN or infinity (an all-ones exponent).
            if tag == _TAG_FLOAT and (data[pos] & 0x7F) << 1 | data[pos + 1] >> 7 == 0xFF:
                raise Undecodable("float is not a number")
            if tag == _TAG_DOUBLE and (data[pos] & 0x7F) << 4 | data[pos + 1] >> 4 == 0x7FF:
                raise Undecodable("double is not a number")
            pos += size
        elif tag in (_TAG_LONGSTR, _TAG_BINARY):
            pos = _sized_end(data, pos, end)
        elif tag in (_TAG_TABLE, _TAG_ARRAY):
            stop = _sized_end(data, pos, end)
            enclosing.append((end, in_table))
            pos, end, in_table = pos + 4, stop, tag == _TAG_TABLE
        else:
            raise Undecodable(f"unknown field type {tag}")


def split_properties(raw: bytes) -> dict[int, bytes]:
    """The encoded fields of a (decodable) property section by flag bit, in wire order."""
    fields: dict[int, bytes] = {}
    bits = ((raw[0] << 8) | raw[1]) & _FIELD_BITS
    pos = 2
    while bits:
        bit = bits.bit_length() - 1
        bits ^= 1 << bit
        kind = _FIELD_KINDS[bit]
        if kind == _SHORTSTR:
            stop = pos + 1 + raw[pos]
        elif kind == _OCTET:
            stop = pos + 1
        elif kind == _LONGLONG:
            stop = pos + 8
        else:
            stop = pos + 4 + int.from_bytes(raw[pos : pos + 4], "big")
        fields[bit] = raw[pos:stop]
        pos = stop
    return fields


def join_properties(fields: dict[int, bytes]) -> bytes:
    """A property section from encoded fields by flag bit (any order)."""
    flags = 0
    for bit in fields:
        flags |= 1 << bit
    ordered = sorted(fields.items(), reverse=True)
    return flags.to_bytes(2, "big") + b"".join(value for _, value in ordered)


def encode_property_shortstr(value: bytes) -> bytes:
    return bytes((len(value),)) + value


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
