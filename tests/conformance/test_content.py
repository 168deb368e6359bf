"""Message content end to end: properties, bodies split over frames, empty bodies, returns,
and what RabbitMQ checks in a publish's properties."""

from __future__ import annotations

import datetime
import random
import struct
from decimal import Decimal
from typing import Any

import pika
import pika.exceptions
import pytest
from pamqp import commands, frame
from pika.adapters.blocking_connection import BlockingChannel

from tests.conformance.helpers import (
    QUEUE_TYPES,
    BrokerHandle,
    connection,
    delete_exchange,
    expect_channel_close,
    make_consumer,
    pump,
    raw_ready,
    settle,
    temp_queue,
    unique,
)
from tests.support.raw_amqp import FRAME_BODY, FRAME_HEADER, RawAMQPClient, encode_frame

HEADERS: dict[str, Any] = {
    "text": "héllo wörld",
    "int": 42,
    "negative": -7,
    "big": 2**40,
    "true": True,
    "false": False,
    "void": None,
    "decimal": Decimal("3.14"),
    "timestamp": datetime.datetime(2022, 9, 1, 12, 30, 15, tzinfo=datetime.UTC),
    "bytes": b"\x00\x01raw\xff",
    "list": [1, "two", [3, {"four": 4}], None, Decimal("0.5"), False],
    "nested": {"level1": {"level2": {"level3": "deep"}}, "array": [True, b"x"]},
    "empty_table": {},
    "empty_list": [],
}

PROPERTIES = {
    "content_type": "application/json",
    "content_encoding": "gzip",
    "headers": HEADERS,
    "delivery_mode": 2,
    "priority": 5,
    "correlation_id": "corr-1",
    "reply_to": "reply-queue",
    "expiration": "600000",
    "message_id": "msg-1",
    "timestamp": 1662035415,
    "type": "event.created",
    "user_id": "guest",
    "app_id": "tui-queue-tests",
    "cluster_id": "cluster-x",
}
BODY = bytes(range(256)) * 3


def _as_dict(properties: pika.BasicProperties) -> dict[str, Any]:
    return {name: getattr(properties, name) for name in PROPERTIES}


def _receive(
    conn: pika.BlockingConnection, channel: BlockingChannel, queue: str, via: str
) -> tuple[pika.BasicProperties, bytes]:
    if via == "get":
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        assert method is not None
        return properties, body
    received: list[tuple[pika.BasicProperties, bytes]] = []
    channel.basic_consume(queue, lambda _c, _m, p, b: received.append((p, b)), auto_ack=True)
    assert pump([conn], lambda: len(received) == 1, timeout=10)
    return received[0]


@pytest.mark.parametrize("via", ["get", "consume"])
@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_properties_round_trip(broker: BrokerHandle, queue_type: str, via: str) -> None:
    """Every basic property pika can set, headers with nested tables, arrays, decimals,
    timestamps, void and byte arrays, come back as sent. (A quorum basic.get adds
    x-delivery-count 0.)"""
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish("", name, BODY, pika.BasicProperties(**PROPERTIES))
        properties, body = _receive(conn, channel, name, via)
        expected = dict(PROPERTIES)
        if queue_type == "quorum" and via == "get":
            expected["headers"] = {**HEADERS, "x-delivery-count": 0}
        assert (_as_dict(properties), body) == (expected, BODY)


# -- raw property bytes ------------------------------------------------------------------------


def _field_table(entries: list[tuple[bytes, bytes]]) -> bytes:
    payload = b"".join(struct.pack(">B", len(key)) + key + value for key, value in entries)
    return struct.pack(">I", len(payload)) + payload


def _shortstr(text: bytes) -> bytes:
    return struct.pack(">B", len(text)) + text


#: A headers table with every field type, keys deliberately unsorted.
RAW_TABLE = _field_table(
    [
        (b"zz-bool", b"t\x01"),
        (b"byte", b"b\xfe"),
        (b"ubyte", b"B\xfe"),
        (b"short", b"s\xff\x00"),
        (b"ushort", b"u\xff\x00"),
        (b"int", b"I\xff\xff\xff\x00"),
        (b"uint", b"i\xff\xff\xff\x00"),
        (b"long", b"l" + struct.pack(">q", -(2**40))),
        (b"float", b"f" + struct.pack(">f", 1.5)),
        (b"double", b"d" + struct.pack(">d", -2.25)),
        (b"decimal", b"D\x02" + struct.pack(">i", 314)),
        (b"longstr", b"S" + struct.pack(">I", 3) + b"abc"),
        (b"bytes", b"x" + struct.pack(">I", 2) + b"\x00\xff"),
        (b"timestamp", b"T" + struct.pack(">Q", 1662035415)),
        (b"table", b"F" + _field_table([(b"k", b"V")])),
        (b"array", b"A" + struct.pack(">I", 5) + b"b\x01V" + b"t\x00"),
        (b"void", b"V"),
        (b"aa-first-key", b"S" + struct.pack(">I", 0)),
    ]
)
#: Every property flag set (content_type .. cluster_id), with the table above as headers.
RAW_PROPERTIES = (
    struct.pack(">H", 0xFFFC)
    + _shortstr(b"text/plain")
    + _shortstr(b"identity")
    + RAW_TABLE
    + b"\x02"  # delivery_mode
    + b"\x09"  # priority
    + _shortstr(b"corr")
    + _shortstr(b"reply")
    + _shortstr(b"600000")
    + _shortstr(b"id-1")
    + struct.pack(">Q", 1662035415)
    + _shortstr(b"kind")
    + _shortstr(b"guest")
    + _shortstr(b"app")
    + _shortstr(b"cluster")
)


def _raw_publish(
    client: RawAMQPClient,
    body: bytes,
    *,
    routing_key: str,
    exchange: str = "",
    mandatory: bool = False,
    frame_max: int = 131072,
    properties: bytes = RAW_PROPERTIES,
) -> None:
    publish = commands.Basic.Publish(
        exchange=exchange, routing_key=routing_key, mandatory=mandatory
    )
    parts = [
        frame.marshal(publish, 1),
        encode_frame(FRAME_HEADER, 1, struct.pack(">HHQ", 60, 0, len(body)) + properties),
    ]
    chunk = frame_max - 8
    parts += [
        encode_frame(FRAME_BODY, 1, body[start : start + chunk])
        for start in range(0, len(body), chunk)
    ]
    client.send(b"".join(parts))


def _read_content(client: RawAMQPClient) -> tuple[bytes, list[int], bytes]:
    """After a deliver/get-ok/return: (property bytes, body frame sizes, body)."""
    content = client.read_frame()
    assert content.frame_type == FRAME_HEADER, content
    _class, _weight, size = struct.unpack(">HHQ", content.payload[:12])
    sizes: list[int] = []
    parts: list[bytes] = []
    while sum(sizes) < size:
        piece = client.read_frame()
        assert piece.frame_type == FRAME_BODY, piece
        sizes.append(len(piece.payload))
        parts.append(piece.payload)
    return content.payload[12:], sizes, b"".join(parts)


def test_property_bytes_pass_through(broker: BrokerHandle) -> None:
    """A classic queue hands back the publisher's property bytes unchanged (every flag set,
    every field type in the headers, keys unsorted): via basic.get, basic.deliver and
    basic.return alike."""
    with temp_queue(broker) as name:
        client = raw_ready(broker)
        try:
            client.call(commands.Confirm.Select(), 1, commands.Confirm.SelectOk)
            _raw_publish(client, b"payload", routing_key=name)
            client.read_until(lambda f: f.is_method(commands.Basic.Ack))
            client.send_frame(commands.Basic.Get(queue=name, no_ack=True), 1)
            client.read_until(lambda f: f.is_method(commands.Basic.GetOk))
            assert _read_content(client) == (RAW_PROPERTIES, [7], b"payload")

            _raw_publish(client, b"payload", routing_key=name)
            client.read_until(lambda f: f.is_method(commands.Basic.Ack))
            client.call(
                commands.Basic.Consume(queue=name, consumer_tag="c", no_ack=True),
                1,
                commands.Basic.ConsumeOk,
            )
            client.read_until(lambda f: f.is_method(commands.Basic.Deliver))
            assert _read_content(client) == (RAW_PROPERTIES, [7], b"payload")

            _raw_publish(client, b"payload", routing_key=unique("nowhere"), mandatory=True)
            returned = client.read_until(lambda f: f.is_method(commands.Basic.Return))
            assert isinstance(returned.method, commands.Basic.Return)
            assert (returned.method.reply_code, returned.method.reply_text) == (312, "NO_ROUTE")
            assert _read_content(client) == (RAW_PROPERTIES, [7], b"payload")
            client.close_connection()
        finally:
            client.close()


@pytest.mark.parametrize(
    ("frame_max", "size", "expected_frames"),
    [(4096, 10_000, [4088, 4088, 1824]), (131072, 300_000, [131064, 131064, 37872])],
    ids=["frame_max-4096", "frame_max-131072"],
)
def test_body_split_into_frames(
    broker: BrokerHandle, frame_max: int, size: int, expected_frames: list[int]
) -> None:
    """Outbound bodies are cut into frames of frame_max - 8 bytes."""
    body = random.Random(size).randbytes(size)
    with temp_queue(broker) as name:
        client = raw_ready(broker, frame_max=frame_max)
        try:
            client.call(commands.Confirm.Select(), 1, commands.Confirm.SelectOk)
            _raw_publish(client, body, routing_key=name, frame_max=frame_max)
            client.read_until(lambda f: f.is_method(commands.Basic.Ack))
            client.send_frame(commands.Basic.Get(queue=name, no_ack=True), 1)
            client.read_until(lambda f: f.is_method(commands.Basic.GetOk))
            assert _read_content(client) == (RAW_PROPERTIES, expected_frames, body)
            client.close_connection()
        finally:
            client.close()


def test_empty_body_sends_no_body_frame(broker: BrokerHandle) -> None:
    with temp_queue(broker) as name:
        client = raw_ready(broker)
        try:
            client.call(commands.Confirm.Select(), 1, commands.Confirm.SelectOk)
            _raw_publish(client, b"", routing_key=name)
            client.read_until(lambda f: f.is_method(commands.Basic.Ack))
            client.send_frame(commands.Basic.Get(queue=name, no_ack=True), 1)
            client.read_until(lambda f: f.is_method(commands.Basic.GetOk))
            assert _read_content(client) == (RAW_PROPERTIES, [], b"")
            client.send_frame(commands.Basic.Get(queue=name, no_ack=True), 1)
            # The frame after the content header is the next method, not an empty body.
            following = client.read_frame()
            assert following.is_method(commands.Basic.GetEmpty), following
            client.close_connection()
        finally:
            client.close()


# -- pika: large, empty, returned --------------------------------------------------------------

LARGE = random.Random(1).randbytes(1 << 20)


@pytest.mark.parametrize("via", ["get", "consume"])
@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_one_mebibyte_message(broker: BrokerHandle, queue_type: str, via: str) -> None:
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish("", name, LARGE, pika.BasicProperties(message_id="big"))
        properties, body = _receive(conn, channel, name, via)
        assert (properties.message_id, len(body), body == LARGE) == ("big", len(LARGE), True)


@pytest.mark.parametrize("via", ["get", "consume"])
def test_empty_body(broker: BrokerHandle, via: str) -> None:
    with temp_queue(broker) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish("", name, b"", pika.BasicProperties(type="empty"))
        properties, body = _receive(conn, channel, name, via)
        assert (properties.type, body) == ("empty", b"")


@pytest.mark.parametrize("exchange", ["", "amq.direct"])
def test_basic_return_content_intact(broker: BrokerHandle, exchange: str) -> None:
    """A mandatory unroutable publish comes back with its properties and body intact."""
    key = unique("nowhere")
    with connection(broker) as conn:
        channel = conn.channel()
        returned: list[tuple[Any, pika.BasicProperties, bytes]] = []
        channel.add_on_return_callback(
            lambda _ch, method, props, body: returned.append((method, props, body))
        )
        channel.basic_publish(exchange, key, BODY, pika.BasicProperties(**PROPERTIES), True)
        channel.basic_publish(exchange, key, b"", pika.BasicProperties(), True)
        channel.queue_declare("", exclusive=True)  # a round trip: the returns came before it
        conn.process_data_events(time_limit=0)
        assert [
            (m.reply_code, m.reply_text, m.exchange, m.routing_key, _as_dict(p), b)
            for m, p, b in returned
        ] == [
            (312, "NO_ROUTE", exchange, key, PROPERTIES, BODY),
            (312, "NO_ROUTE", exchange, key, dict.fromkeys(PROPERTIES), b""),
        ]


# -- what a publish's properties may not say ---------------------------------------------------


@pytest.mark.parametrize(
    ("properties", "text"),
    [
        (
            {"user_id": "other"},
            "PRECONDITION_FAILED - user_id property set to 'other' but authenticated user was "
            "'guest'",
        ),
        (
            {"user_id": ""},
            "PRECONDITION_FAILED - user_id property set to '' but authenticated user was 'guest'",
        ),
        ({"expiration": "abc"}, "PRECONDITION_FAILED - invalid expiration 'abc': no_integer"),
        ({"expiration": ""}, "PRECONDITION_FAILED - invalid expiration '': no_integer"),
        ({"expiration": " 10"}, "PRECONDITION_FAILED - invalid expiration ' 10': no_integer"),
        (
            {"expiration": "-1"},
            "PRECONDITION_FAILED - invalid expiration '-1': {value_negative,-1}",
        ),
        (
            {"expiration": "10x"},
            "PRECONDITION_FAILED - invalid expiration '10x': {leftover_string,\"x\"}",
        ),
        (
            {"expiration": "315360000001"},
            "PRECONDITION_FAILED - invalid expiration '315360000001': "
            "{value_too_large,315360000001}",
        ),
        (
            {"delivery_mode": 3},
            "PRECONDITION_FAILED - invalid message: {delivery_mode_unknown,3}",
        ),
        (
            {"delivery_mode": 0},
            "PRECONDITION_FAILED - invalid message: {delivery_mode_unknown,0}",
        ),
        (
            {"user_id": "other", "expiration": "abc"},
            "PRECONDITION_FAILED - user_id property set to 'other' but authenticated user was "
            "'guest'",
        ),
    ],
    ids=[
        "user-other",
        "user-empty",
        "expiration-text",
        "expiration-empty",
        "expiration-space",
        "expiration-negative",
        "expiration-leftover",
        "expiration-too-large",
        "delivery-mode-3",
        "delivery-mode-0",
        "user-checked-first",
    ],
)
def test_refused_properties(broker: BrokerHandle, properties: dict[str, Any], text: str) -> None:
    with temp_queue(broker) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.basic_publish("", name, b"x", pika.BasicProperties(**properties))
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.queue_declare(name, passive=True)
        assert (excinfo.value.reply_code, excinfo.value.reply_text) == (406, text)
        assert conn.is_open


def test_refused_properties_close_names_basic_publish(broker: BrokerHandle) -> None:
    with temp_queue(broker) as name:
        client = raw_ready(broker)
        try:
            user_id_other = struct.pack(">H", 0x0010) + _shortstr(b"other")
            _raw_publish(client, b"x", routing_key=name, properties=user_id_other)
            close = expect_channel_close(client, 1)
            assert (close.reply_code, close.class_id, close.method_id) == (406, 60, 40)
        finally:
            client.close()


@pytest.mark.parametrize("expiration", ["+600000", "0", "315360000000"])
def test_accepted_expirations(broker: BrokerHandle, expiration: str) -> None:
    """A leading + and the extremes pass the check (the message is consumed at once here)."""
    with temp_queue(broker) as name, connection(broker) as conn:
        channel = conn.channel()
        received: list[str | None] = []
        channel.basic_consume(
            name, lambda _c, _m, p, _b: received.append(p.expiration), auto_ack=True
        )
        channel.basic_publish("", name, b"x", pika.BasicProperties(expiration=expiration))
        assert pump([conn], lambda: len(received) == 1)
        assert received == [expiration]


# -- sender-selected distribution (CC / BCC headers) -------------------------------------------


def test_cc_and_bcc_headers_add_routing_keys(broker: BrokerHandle) -> None:
    """CC and BCC (arrays of long strings) are extra routing keys; BCC is removed from the
    delivered headers."""
    exchange = unique("xcc")
    with (
        temp_queue(broker) as q1,
        temp_queue(broker) as q2,
        temp_queue(broker) as q3,
        connection(broker) as conn,
    ):
        channel = conn.channel()
        channel.exchange_declare(exchange, "direct")
        try:
            for queue, key in ((q1, "k1"), (q2, "k2"), (q3, "k3")):
                channel.queue_bind(queue, exchange, routing_key=key)
            channel.confirm_delivery()
            headers = {"CC": ["k2"], "BCC": ["k3"], "other": 1}
            channel.basic_publish(exchange, "k1", b"cc", pika.BasicProperties(headers=headers))
            got = [channel.basic_get(queue, auto_ack=True) for queue in (q1, q2, q3)]
            assert [(m.routing_key, p.headers, b) for m, p, b in got] == [
                ("k1", {"CC": ["k2"], "other": 1}, b"cc")
            ] * 3
        finally:
            delete_exchange(broker, exchange)


def test_cc_header_must_be_an_array(broker: BrokerHandle) -> None:
    with temp_queue(broker) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.basic_publish("", name, b"x", pika.BasicProperties(headers={"CC": "k2"}))
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.queue_declare(name, passive=True)
        assert (excinfo.value.reply_code, excinfo.value.reply_text) == (
            406,
            'PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,"CC",longstr}',
        )


def test_consumer_sees_properties_of_each_message(broker: BrokerHandle) -> None:
    """Different property sets on consecutive messages are not mixed up."""
    with temp_queue(broker) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        for i in range(5):
            properties = pika.BasicProperties(
                message_id=f"id-{i}", headers={"i": i} if i % 2 else None, priority=i
            )
            channel.basic_publish("", name, f"b{i}".encode(), properties)
        consumer = make_consumer(conn).start(name, auto_ack=True)
        assert pump([conn], lambda: len(consumer.received) == 5)
        assert [(m.body, m.headers) for m in consumer.received] == [
            ("b0", None),
            ("b1", {"i": 1}),
            ("b2", None),
            ("b3", {"i": 3}),
            ("b4", None),
        ]


def test_undecodable_properties_close_the_connection(broker: BrokerHandle) -> None:
    """A property section RabbitMQ cannot decode (here an array whose length is one byte
    short) ends the connection with 541 INTERNAL_ERROR, class/method 0/0."""
    bad_array = b"A" + struct.pack(">I", 4) + b"b\x01V" + b"t\x00"
    properties = struct.pack(">H", 0x2000) + _field_table([(b"k", bad_array)])
    with temp_queue(broker) as name:
        client = raw_ready(broker)
        try:
            _raw_publish(client, b"x", routing_key=name, properties=properties)
            close = client.read_until(lambda f: f.is_method(commands.Connection.Close), 2).method
            assert isinstance(close, commands.Connection.Close)
            assert (close.reply_code, close.reply_text, close.class_id, close.method_id) == (
                541,
                "INTERNAL_ERROR",
                0,
                0,
            )
        finally:
            client.close()


def test_direct_reply_to(broker: BrokerHandle) -> None:
    """The direct_reply_to capability the broker advertises: consume amq.rabbitmq.reply-to
    (no-ack), publish a request with reply_to set to it, answer to the rewritten reply_to."""
    with temp_queue(broker) as requests, connection(broker) as client, connection(broker) as server:
        channel = client.channel()
        replies: list[bytes] = []
        channel.basic_consume(
            "amq.rabbitmq.reply-to", lambda _c, _m, _p, body: replies.append(body), auto_ack=True
        )
        channel.basic_publish(
            "", requests, b"ping", pika.BasicProperties(reply_to="amq.rabbitmq.reply-to")
        )
        server_channel = server.channel()
        request = None

        def got_request() -> bool:
            nonlocal request
            method, properties, _body = server_channel.basic_get(requests, auto_ack=True)
            if method is not None:
                request = properties
            return request is not None

        assert pump([server], got_request)
        assert request is not None and request.reply_to.startswith("amq.rabbitmq.reply-to.")
        server_channel.basic_publish("", request.reply_to, b"pong")
        assert pump([client], lambda: replies == [b"pong"])


@pytest.mark.parametrize(
    ("properties", "decodable"),
    [
        (b"\x10\x00\x02\x00", False),
        (b"", False),
        (b"\x00", False),
        (b"\x00\x01", True),
        (b"\x00\x01\x00\x00", False),
        (struct.pack(">H", 0x2000) + _field_table([(b"k", b"L" + struct.pack(">q", 5))]), True),
        (struct.pack(">H", 0x2000) + _field_table([(b"k", b"U\x00\x05")]), False),
        (struct.pack(">H", 0x2000) + _field_table([(b"k", b"f\x7f\xc0\x00\x00")]), False),
        (struct.pack(">H", 0x2000) + _field_table([(b"k", b"d" + bytes(8))]), True),
        (struct.pack(">H", 0x2000) + struct.pack(">I", 4) + b"\x01kV\x00", False),
        (b"\x10\x00\x03\x01", False),
    ],
    ids=[
        "trailing-byte",
        "no-flags",
        "half-flags",
        "lowest-flag-bit",
        "lowest-flag-bit-and-bytes",
        "L-is-a-long",
        "U-is-unknown",
        "nan-float",
        "zero-double",
        "leftover-in-table",
        "bad-mode-and-trailing-byte",
    ],
)
def test_what_rabbitmq_can_decode(broker: BrokerHandle, properties: bytes, decodable: bool) -> None:
    """The property sections RabbitMQ 3.10's decoder accepts (the two lowest flag bits are
    ignored, `L` reads as a long) and those it crashes on (541, even before a bad
    delivery_mode is looked at): trailing bytes, unknown field types, NaN floats."""
    with temp_queue(broker) as name:
        client = raw_ready(broker)
        try:
            client.call(commands.Confirm.Select(), 1, commands.Confirm.SelectOk)
            _raw_publish(client, b"x", routing_key=name, properties=properties)
            reply = client.read_until(
                lambda f: f.is_method(commands.Basic.Ack) or f.is_method(commands.Connection.Close),
                2,
            ).method
            if decodable:
                assert isinstance(reply, commands.Basic.Ack)
                client.close_connection()
            else:
                assert isinstance(reply, commands.Connection.Close)
                assert (reply.reply_code, reply.reply_text, reply.class_id, reply.method_id) == (
                    541,
                    "INTERNAL_ERROR",
                    0,
                    0,
                )
        finally:
            client.close()


@pytest.mark.parametrize(
    ("headers", "text"),
    [
        ({"BCC": "k"}, '{unacceptable_type_in_header,"BCC",longstr}'),
        ({"CC": 5}, '{unacceptable_type_in_header,"CC",signedint}'),
        ({"CC": {"a": 1}}, '{unacceptable_type_in_header,"CC",table}'),
    ],
    ids=["bcc-string", "cc-int", "cc-table"],
)
def test_routing_headers_must_be_arrays(
    broker: BrokerHandle, headers: dict[str, Any], text: str
) -> None:
    with temp_queue(broker) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.basic_publish("", name, b"x", pika.BasicProperties(headers=headers))
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.queue_declare(name, passive=True)
        assert (excinfo.value.reply_code, excinfo.value.reply_text) == (
            406,
            f"PRECONDITION_FAILED - invalid message: {text}",
        )


def test_routing_header_checks_come_before_delivery_mode(broker: BrokerHandle) -> None:
    """user_id and expiration are checked first, then CC/BCC, then delivery_mode."""
    with temp_queue(broker) as name, connection(broker) as conn:
        channel = conn.channel()
        properties = pika.BasicProperties(delivery_mode=3, headers={"CC": "k"})
        channel.basic_publish("", name, b"x", properties)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.queue_declare(name, passive=True)
        assert excinfo.value.reply_text == (
            'PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,"CC",longstr}'
        )


def test_cc_array_items_that_are_not_strings_are_skipped(broker: BrokerHandle) -> None:
    with temp_queue(broker) as q1, temp_queue(broker) as q2, connection(broker) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        headers = {"CC": [q2, 7, None]}
        channel.basic_publish("", q1, b"x", pika.BasicProperties(headers=headers))
        got = [channel.basic_get(queue, auto_ack=True)[2] for queue in (q1, q2)]
        assert got == [b"x", b"x"]


def test_direct_reply_to_details(broker: BrokerHandle) -> None:
    """A reply is delivered with the channel's next delivery tag, which it does not use up; a
    mandatory reply still comes back as unroutable (it reached no queue); the reply address
    "exists" for queue.declare from another channel (0 messages, 1 consumer) and is gone once
    the reply consumer is cancelled, after which replies to it are dropped."""
    with temp_queue(broker) as requests, connection(broker) as conn:
        channel = conn.channel()
        replies: list[tuple[int, str, str, bytes]] = []
        returned: list[str] = []
        channel.add_on_return_callback(
            lambda _ch, method, _p, _b: returned.append(method.reply_text)
        )
        tag = channel.basic_consume(
            "amq.rabbitmq.reply-to",
            lambda _c, m, _p, body: replies.append(
                (m.delivery_tag, m.exchange, m.routing_key, body)
            ),
            auto_ack=True,
        )
        channel.basic_publish(
            "", requests, b"ask", pika.BasicProperties(reply_to="amq.rabbitmq.reply-to")
        )
        method, properties, _body = channel.basic_get(requests, auto_ack=True)
        address = properties.reply_to
        assert method.delivery_tag == 1
        channel.basic_publish("", address, b"reply", mandatory=True)
        assert pump([conn], lambda: len(replies) == 1 and len(returned) == 1)
        assert replies == [(2, "", address, b"reply")]
        assert returned == ["NO_ROUTE"]
        channel.basic_publish("", requests, b"next")
        assert channel.basic_get(requests, auto_ack=True)[0].delivery_tag == 2
        other = conn.channel()
        declared = other.queue_declare(address, passive=True).method
        assert (declared.queue, declared.message_count, declared.consumer_count) == (address, 0, 1)
        declared = other.queue_declare("amq.rabbitmq.reply-to").method
        assert (declared.message_count, declared.consumer_count) == (0, 1)
        channel.basic_cancel(tag)
        channel.basic_publish("", address, b"too late")
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            other.queue_declare(address, passive=True)
        assert excinfo.value.reply_text == f"NOT_FOUND - no queue '{address}' in vhost '/'"
        settle([conn])
        assert len(replies) == 1


@pytest.mark.parametrize(
    ("scenario", "code", "text"),
    [
        (
            "publish-without-consumer",
            406,
            "PRECONDITION_FAILED - fast reply consumer does not exist",
        ),
        ("consume-with-acks", 406, "PRECONDITION_FAILED - reply consumer cannot acknowledge"),
        ("consume-twice", 406, "PRECONDITION_FAILED - reply consumer already set"),
        (
            "declare-unknown-address",
            404,
            "NOT_FOUND - no queue 'amq.rabbitmq.reply-to.x' in vhost '/'",
        ),
        ("declare-lookalike", 404, "NOT_FOUND - no queue 'amq.rabbitmq.reply-tox' in vhost '/'"),
    ],
)
def test_direct_reply_to_refusals(
    broker: BrokerHandle, scenario: str, code: int, text: str
) -> None:
    with connection(broker) as conn:
        channel = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            if scenario == "publish-without-consumer":
                properties = pika.BasicProperties(reply_to="amq.rabbitmq.reply-to")
                channel.basic_publish("", "anywhere", b"x", properties)
                channel.queue_declare("", exclusive=True)
            elif scenario == "consume-with-acks":
                channel.basic_consume("amq.rabbitmq.reply-to", lambda *_: None)
            elif scenario == "consume-twice":
                for _ in range(2):
                    channel.basic_consume("amq.rabbitmq.reply-to", lambda *_: None, auto_ack=True)
            elif scenario == "declare-unknown-address":
                channel.queue_declare("amq.rabbitmq.reply-to.x", passive=True)
            else:
                channel.queue_declare("amq.rabbitmq.reply-tox")
        assert (excinfo.value.reply_code, excinfo.value.reply_text) == (code, text)


@pytest.mark.parametrize("case", ["own-address-on-own-channel", "malformed-address"])
def test_direct_reply_to_crashes(broker: BrokerHandle, case: str) -> None:
    """Two ways to crash a RabbitMQ channel through reply addresses (connection closed with a
    bare 541): declaring a channel's own address on that channel (it calls itself), and
    publishing to an address whose first part is no encoded pid."""
    with connection(broker) as conn:
        channel = conn.channel()
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as excinfo:
            if case == "own-address-on-own-channel":
                channel.basic_consume("amq.rabbitmq.reply-to", lambda *_: None, auto_ack=True)
                queue = channel.queue_declare("", exclusive=True).method.queue
                properties = pika.BasicProperties(reply_to="amq.rabbitmq.reply-to")
                channel.basic_publish("", queue, b"ask", properties)
                address = channel.basic_get(queue, auto_ack=True)[1].reply_to
                channel.queue_declare(address, passive=True)
            else:
                channel.basic_publish("", "amq.rabbitmq.reply-to.abc.def", b"x")
                channel.queue_declare("", exclusive=True)
        assert (excinfo.value.reply_code, excinfo.value.reply_text) == (541, "INTERNAL_ERROR")
