"""Frame-level errors, sent with the raw client after a normal handshake."""

from __future__ import annotations

import time

import pytest
from pamqp import body, commands, frame, header

from tests.conformance.helpers import (
    BrokerHandle,
    close_fields,
    connection,
    expect_connection_close,
    raw_ready,
    read_connection_close,
    unique,
)
from tests.support.raw_amqp import RawAMQPClient, encode_frame, encode_method_payload

EXPECTED_CONTENT_HEADER = (
    "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead"
)
EXPECTED_CONTENT_BODY = (
    "UNEXPECTED_FRAME - expected content body, got non content body frame instead"
)
EXPECTED_METHOD = "UNEXPECTED_FRAME - expected method frame, got non method frame instead"


def _publish(exchange: str = "", routing_key: str = "x") -> bytes:
    return frame.marshal(commands.Basic.Publish(exchange=exchange, routing_key=routing_key), 1)


def _header(size: int, channel: int = 1) -> bytes:
    return frame.marshal(header.ContentHeader(0, size), channel)


def _body(data: bytes, channel: int = 1) -> bytes:
    return frame.marshal(body.ContentBody(data), channel)


def _method(value: commands.Basic.Qos | commands.Queue.Declare, channel: int = 1) -> bytes:
    return frame.marshal(value, channel)


def _header_with_class(class_id: int) -> bytes:
    raw = bytearray(_header(3))
    raw[7:9] = class_id.to_bytes(2, "big")
    return bytes(raw)


# (id, bytes sent after opening channels 1 and 2, expected connection.close fields)
NON_FATAL_CASES = [
    (
        "unknown-frame-type-9",
        encode_frame(9, 0, b"abc"),
        (501, 'FRAME_ERROR - type 9, all octets = <<"abc">>: unknown_frame', 0, 0),
    ),
    (
        "unknown-frame-type-4-on-channel-1",
        encode_frame(4, 1, b""),
        (501, "FRAME_ERROR - type 4, all octets = <<>>: unknown_frame", 0, 0),
    ),
    (
        "heartbeat-with-payload",
        encode_frame(8, 0, b"x"),
        (501, 'FRAME_ERROR - type 8, all octets = <<"x">>: unknown_frame', 0, 0),
    ),
    (
        "method-frame-of-one-byte",
        encode_frame(1, 1, b"\x00"),
        (501, "FRAME_ERROR - type 1, all octets = <<0>>: unknown_frame", 0, 0),
    ),
    (
        "truncated-queue-declare",
        encode_frame(1, 1, encode_method_payload(50, 10, b"\x00")),
        (501, "FRAME_ERROR - cannot decode <<0>>", 50, 10),
    ),
    (
        "heartbeat-on-channel-1",
        encode_frame(8, 1, b""),
        (505, "UNEXPECTED_FRAME - type 8, all octets = <<>>", 0, 0),
    ),
    (
        "heartbeat-on-unopened-channel-3",
        encode_frame(8, 3, b""),
        (505, "UNEXPECTED_FRAME - type 8, all octets = <<>>", 0, 0),
    ),
    (
        "body-on-channel-0",
        encode_frame(3, 0, b"abc"),
        (505, 'UNEXPECTED_FRAME - type 3, all octets = <<"abc">>', 0, 0),
    ),
    (
        "publish-then-method",
        _publish() + _method(commands.Basic.Qos(prefetch_count=1)),
        (505, EXPECTED_CONTENT_HEADER, 60, 40),
    ),
    (
        "publish-then-body",
        _publish() + _body(b"abc"),
        (505, EXPECTED_CONTENT_HEADER, 60, 40),
    ),
    (
        "header-without-publish",
        _header(3),
        (505, EXPECTED_METHOD, 0, 0),
    ),
    (
        "body-on-unopened-channel",
        _body(b"abc", channel=7),
        (505, EXPECTED_METHOD, 0, 0),
    ),
    (
        "header-on-other-channel",
        _publish() + _header(3, channel=2),
        (505, EXPECTED_METHOD, 0, 0),
    ),
    (
        "publish-header-then-method",
        _publish() + _header(10) + _method(commands.Basic.Qos(prefetch_count=1)),
        (505, EXPECTED_CONTENT_BODY, 60, 40),
    ),
    (
        "two-content-headers",
        _publish() + _header(10) + _header(10),
        (505, EXPECTED_CONTENT_BODY, 60, 40),
    ),
    (
        "content-header-of-class-50",
        _publish() + _header_with_class(50),
        (
            505,
            "UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead",
            60,
            40,
        ),
    ),
    (
        "body-frame-at-frame-max-without-publish",
        encode_frame(3, 1, b"x" * 131072),
        (505, EXPECTED_METHOD, 0, 0),
    ),
]


@pytest.mark.parametrize(
    ("data", "expected"),
    [pytest.param(data, expected, id=case) for case, data, expected in NON_FATAL_CASES],
)
def test_frame_error_closes_connection(broker: BrokerHandle, data: bytes, expected: tuple) -> None:
    client = raw_ready(broker, channels=2)
    try:
        client.send(data)
        close = read_connection_close(client)
        assert close_fields(close) == expected
        client.send_frame(commands.Connection.CloseOk())
        assert client.wait_for_eof(2)
    finally:
        client.close()


def test_non_fatal_frame_errors_wait_for_close_ok(broker: BrokerHandle) -> None:
    """After a non-fatal error's connection.close the server keeps the socket open (well past
    the 3 s of a fatal error) until close-ok arrives."""
    cases = [c for c in NON_FATAL_CASES if c[0] in ("unknown-frame-type-9", "publish-then-body")]
    clients = [raw_ready(broker, channels=2, timeout=8) for _ in cases]
    try:
        for client, (_case, data, _expected) in zip(clients, cases, strict=True):
            client.send(data)
        for client, (case, _data, expected) in zip(clients, cases, strict=True):
            assert close_fields(read_connection_close(client)) == expected, case
        deadline = time.monotonic() + 3.5
        for client in clients:
            assert not client.wait_for_eof(max(0.0, deadline - time.monotonic()))
        for client in clients:
            client.send_frame(commands.Connection.CloseOk())
            assert client.wait_for_eof(2)
    finally:
        for client in clients:
            client.close()


# (id, bytes, expected close fields): fatal frame errors; the socket is closed ~3 s later
FATAL_CASES = [
    (
        "body-frame-too-large",
        encode_frame(3, 1, b"x" * 131073),
        (
            501,
            "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,131073,131064}",
            0,
            0,
        ),
    ),
    (
        "method-frame-too-large",
        encode_frame(1, 1, b"x" * 200000),
        (
            501,
            "FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,200000,131064}",
            0,
            0,
        ),
    ),
    (
        "bad-end-byte",
        encode_frame(1, 1, b"\x00\x14\x00\x28\x00\x00\x00\x00", end=0xAB),
        (
            501,
            "FRAME_ERROR - type 1, all octets = <<0,20,0,40,0,0,0,0>>: "
            "{invalid_frame_end_marker,171}",
            0,
            0,
        ),
    ),
]


def test_fatal_frame_errors_close_then_drop(broker: BrokerHandle) -> None:
    """Frame too large / bad end byte: close at once, then the socket goes ~3 s later without
    waiting for close-ok. The cases run in parallel."""
    clients = [raw_ready(broker, channels=1, timeout=8) for _ in FATAL_CASES]
    try:
        sent = []
        for client, (_case, data, _expected) in zip(clients, FATAL_CASES, strict=True):
            client.send(data)
            sent.append(time.monotonic())
        for client, started, (case, _data, expected) in zip(
            clients, sent, FATAL_CASES, strict=True
        ):
            assert close_fields(read_connection_close(client)) == expected, case
            # No close-ok is sent: the server drops the socket by itself.
            assert client.wait_for_eof(max(0.1, started + 6 - time.monotonic())), case
            elapsed = time.monotonic() - started
            assert 2.5 <= elapsed <= 4.5, (case, elapsed)
    finally:
        for client in clients:
            client.close()


def test_frame_too_large_with_small_negotiated_frame_max(broker: BrokerHandle) -> None:
    client = raw_ready(broker, channels=1, frame_max=4096)
    try:
        client.send(encode_frame(3, 1, b"x" * 5000))
        assert close_fields(read_connection_close(client)) == (
            501,
            "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,5000,4088}",
            0,
            0,
        )
    finally:
        client.close()


def test_body_frame_of_exactly_frame_max_is_accepted(broker: BrokerHandle) -> None:
    """RabbitMQ lets a frame payload reach frame_max (8 bytes over frame_max - 8)."""
    queue = unique()
    client = raw_ready(broker, channels=1)
    try:
        client.call(
            commands.Queue.Declare(queue=queue, exclusive=True), 1, commands.Queue.DeclareOk
        )
        data = b"y" * 131072
        client.send(_publish(routing_key=queue) + _header(len(data)) + encode_frame(3, 1, data))
        ok = client.call(commands.Basic.Get(queue=queue, no_ack=True), 1, commands.Basic.GetOk)
        assert ok.message_count == 0
        content = client.read_until(lambda f: f.frame_type == 2)
        assert content.value.body_size == 131072
        received = b""
        while len(received) < 131072:
            received += client.read_until(lambda f: f.frame_type == 3).value.value
        assert received == data
        client.close_connection()
    finally:
        client.close()


@pytest.mark.parametrize(
    "payload",
    [encode_method_payload(10, 99), encode_method_payload(99, 10)],
    ids=["unknown-method-10.99-ch0", "unknown-class-99.10-ch0"],
)
def test_unknown_method_on_channel_0_drops_socket(broker: BrokerHandle, payload: bytes) -> None:
    _expect_drop_without_close(raw_ready(broker, channels=1), encode_frame(1, 0, payload))


@pytest.mark.parametrize(
    "payload",
    [encode_method_payload(60, 99), encode_method_payload(99, 10)],
    ids=["unknown-method-60.99", "unknown-class-99.10"],
)
def test_unknown_method_on_channel_1_drops_socket(broker: BrokerHandle, payload: bytes) -> None:
    _expect_drop_without_close(raw_ready(broker, channels=1), encode_frame(1, 1, payload))


def _expect_drop_without_close(client: RawAMQPClient, data: bytes) -> None:
    try:
        client.send(data)
        started = time.monotonic()
        closing = client.wait_for_close(2.0)
        assert closing.frames == []
        assert closing.eof
        assert time.monotonic() - started < 1.0
    finally:
        client.close()


def test_other_connections_survive_frame_errors(broker: BrokerHandle) -> None:
    with connection(broker) as conn:
        channel = conn.channel()
        for data in (encode_frame(9, 0, b"abc"), encode_frame(1, 1, encode_method_payload(99, 1))):
            client = raw_ready(broker, channels=1)
            try:
                client.send(data)
                assert client.wait_for_close(2.0, reply_close_ok=True).eof
            finally:
                client.close()
            ok = channel.queue_declare("", exclusive=True)
            assert ok.method.queue.startswith("amq.gen-")


def test_connection_close_on_channel_1(broker: BrokerHandle) -> None:
    client = raw_ready(broker, channels=1)
    try:
        client.send_frame(commands.Connection.Close(200, "x", 0, 0), 1)
        closing = expect_connection_close(client)
        assert close_fields(closing.close) == (
            503,
            "COMMAND_INVALID - unimplemented method",
            10,
            50,
        )
    finally:
        client.close()


def test_outbound_bodies_split_at_frame_max_minus_8(broker: BrokerHandle) -> None:
    client = raw_ready(broker, channels=1)
    try:
        queue = client.call(
            commands.Queue.Declare(queue="", exclusive=True), 1, commands.Queue.DeclareOk
        ).queue
        client.call(commands.Confirm.Select(), 1, commands.Confirm.SelectOk)
        client.send_message(1, b"z" * 300000, routing_key=queue, frame_max=100000)
        client.send_message(1, b"", routing_key=queue)
        client.read_until(lambda f: f.is_method(commands.Basic.Ack) and f.method.delivery_tag == 2)
        client.send_frame(commands.Basic.Get(queue=queue, no_ack=True), 1)
        client.send_frame(commands.Basic.Get(queue=queue, no_ack=True), 1)
        client.send_frame(commands.Basic.Get(queue=queue, no_ack=True), 1)
        kinds = []
        while not kinds or kinds[-1] != "get-empty":
            received = client.read_until(lambda f: True)
            if received.is_method(commands.Basic.GetOk):
                kinds.append("get-ok")
            elif received.is_method(commands.Basic.GetEmpty):
                kinds.append("get-empty")
            elif received.frame_type == 2:
                kinds.append(("header", received.value.body_size))
            elif received.frame_type == 3:
                kinds.append(("body", len(received.payload)))
            else:
                kinds.append(("other", received.value))
        assert kinds == [
            "get-ok",
            ("header", 300000),
            ("body", 131064),
            ("body", 131064),
            ("body", 37872),
            "get-ok",
            ("header", 0),  # an empty body sends no body frame
            "get-empty",
        ]
        client.close_connection()
    finally:
        client.close()


def test_after_connection_close_only_close_ok_counts(broker: BrokerHandle) -> None:
    client = raw_ready(broker, channels=1)
    try:
        client.send(encode_frame(9, 0, b"abc"))
        read_connection_close(client)
        client.send_frame(commands.Queue.Declare(queue="", exclusive=True), 1)
        client.send_frame(commands.Channel.Open(), 2)
        assert not client.wait_for_eof(0.3)  # ignored: no reply, no drop
        client.send_frame(commands.Connection.CloseOk())
        closing = client.wait_for_close(2)
        assert closing.frames == []
        assert closing.eof
    finally:
        client.close()
