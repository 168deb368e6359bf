"""Connection handshake: protocol header, start/start-ok, tune, open, authentication, heartbeats."""

from __future__ import annotations

import time
from collections.abc import Callable

import pika
import pika.exceptions
import pytest
from pamqp import commands

from tests.conformance.helpers import BrokerHandle, close_fields, connection, raw_client
from tests.support.raw_amqp import CLIENT_PROPERTIES, PROTOCOL_HEADER, RawAMQPClient

CAPABILITIES = {
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "basic.nack": True,
    "consumer_cancel_notify": True,
    "connection.blocked": True,
    "consumer_priorities": True,
    "authentication_failure_close": True,
    "per_consumer_qos": True,
    "direct_reply_to": True,
}

LOGIN_REFUSED = (
    "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
    "For details see the broker logfile."
)

#: RabbitMQ closes a refused handshake 3 s after the cause (SILENT_CLOSE_DELAY); allow slack.
SILENT_CLOSE_MIN = 2.5
SILENT_CLOSE_MAX = 4.5

BAD_PLAIN_RESPONSES = ["guest", "\0guest", "guest\0guest", "\0guest\0guest\0x", ""]
BAD_TUNE_OK = [(0, 131072), (2048, 131072), (2047, 0), (2047, 1000), (2047, 4095), (2047, 131073)]


def test_connect_negotiates_rabbitmq_limits(broker: BrokerHandle) -> None:
    """Scenario 1: the capabilities table and the negotiated channel_max/frame_max/heartbeat."""
    with connection(broker) as conn:
        impl = conn._impl
        assert impl.server_capabilities == CAPABILITIES
        assert impl.params.channel_max == 2047
        assert impl.params.frame_max == 131072
        assert impl.params.heartbeat == 60
        assert conn.channel().is_open


def test_connection_start_fields(broker: BrokerHandle) -> None:
    with raw_client(broker) as client:
        start = client.start()
        assert (start.version_major, start.version_minor) == (0, 9)
        assert start.mechanisms == "PLAIN AMQPLAIN"
        assert start.locales == "en_US"
        props = start.server_properties
        assert list(props) == [
            "capabilities",
            "cluster_name",
            "copyright",
            "information",
            "platform",
            "product",
            "version",
        ]
        assert list(props["capabilities"].items()) == list(CAPABILITIES.items())
        assert props["product"] == "RabbitMQ"
        assert str(props["version"]).startswith("3.10.")


def test_connection_tune_values(broker: BrokerHandle) -> None:
    with raw_client(broker) as client:
        client.start()
        client.start_ok()
        tune = client.expect(commands.Connection.Tune, 0)
        assert (tune.channel_max, tune.frame_max, tune.heartbeat) == (2047, 131072, 60)


def test_bad_password_pika(broker: BrokerHandle) -> None:
    """Scenario 2."""
    params = broker.params(credentials=pika.PlainCredentials("guest", "wrong"))
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as excinfo:
        pika.BlockingConnection(params)
    assert f"(403) '{LOGIN_REFUSED}'" in str(excinfo.value)


# -- refused handshakes: all provoked in parallel, each must end ~3 s later ----------------


def _provoke_bad_password(client: RawAMQPClient) -> None:
    client.start()
    client.start_ok(password="wrong")


def _provoke_bad_password_no_capability(client: RawAMQPClient) -> None:
    client.start()
    client.start_ok(password="wrong", client_properties={"product": "x"})


def _provoke_plain(response: str) -> Callable[[RawAMQPClient], None]:
    def provoke(client: RawAMQPClient) -> None:
        client.start()
        client.start_ok(response=response)

    return provoke


def _provoke_mechanism(client: RawAMQPClient) -> None:
    client.start()
    client.start_ok(mechanism="FOO")


def _tuned(client: RawAMQPClient) -> None:
    client.start()
    client.start_ok()
    client.expect(commands.Connection.Tune, 0)


def _provoke_tune_ok(channel_max: int, frame_max: int) -> Callable[[RawAMQPClient], None]:
    def provoke(client: RawAMQPClient) -> None:
        _tuned(client)
        client.tune_ok(channel_max, frame_max, 0)
        client.send_frame(commands.Connection.Open("/"))

    return provoke


def _provoke_open_before_tune_ok(client: RawAMQPClient) -> None:
    _tuned(client)
    client.send_frame(commands.Connection.Open("/"))


def _provoke_tune_ok_before_start_ok(client: RawAMQPClient) -> None:
    client.start()
    client.send_frame(commands.Connection.TuneOk(2047, 131072, 0))


def _provoke_oversized_frame_before_tune(client: RawAMQPClient) -> None:
    client.start()
    client.send(b"\x01\x00\x00\x00\x00\x13\x88" + b"x" * 5000 + b"\xce")


#: (case, provocation, the frames expected before the drop: [] or [close fields])
REFUSED_HANDSHAKES: list[tuple[str, Callable[[RawAMQPClient], None], list[tuple]]] = [
    ("bad password", _provoke_bad_password, [(403, LOGIN_REFUSED, 0, 0)]),
    ("bad password, no capability", _provoke_bad_password_no_capability, []),
    *[(f"PLAIN {r!r}", _provoke_plain(r), []) for r in BAD_PLAIN_RESPONSES],
    ("mechanism FOO", _provoke_mechanism, []),
    *[(f"tune-ok {cm}/{fm}", _provoke_tune_ok(cm, fm), []) for cm, fm in BAD_TUNE_OK],
    ("open before tune-ok", _provoke_open_before_tune_ok, []),
    ("tune-ok before start-ok", _provoke_tune_ok_before_start_ok, []),
    ("5000-byte frame before tune-ok", _provoke_oversized_frame_before_tune, []),
]


def test_refused_handshakes_close_after_3s(broker: BrokerHandle) -> None:
    """Handshake errors: no frame (or only the 403 close), then the socket goes ~3 s later.

    RabbitMQ does not wait for close-ok here (SILENT_CLOSE_DELAY). All cases run in parallel.
    """
    clients = [broker.raw(10) for _ in REFUSED_HANDSHAKES]
    try:
        provoked = []
        for client, (_case, provoke, _expected) in zip(clients, REFUSED_HANDSHAKES, strict=True):
            provoke(client)
            provoked.append(time.monotonic())
        for client, started, (case, _provoke, expected) in zip(
            clients, provoked, REFUSED_HANDSHAKES, strict=True
        ):
            closing = client.wait_for_close(max(0.1, started + 8 - time.monotonic()))
            elapsed = time.monotonic() - started
            seen = [close_fields(f.method) if f.method else f for f in closing.frames]
            assert seen == expected, case
            assert closing.eof, case
            assert SILENT_CLOSE_MIN <= elapsed <= SILENT_CLOSE_MAX, (case, elapsed)
    finally:
        for client in clients:
            client.close()


def test_tune_ok_smallest_values_accepted(broker: BrokerHandle) -> None:
    with raw_client(broker) as client:
        client.handshake(channel_max=1, frame_max=4096, heartbeat=0)
        client.open_channel(1)
        client.close_connection()


@pytest.mark.parametrize(
    "header",
    [b"AMQP\x00\x00\x09\x02", b"AMQP\x00\x00\x08\x00", b"GET / HTTP/1.1\r\n\r\n", b"XXXXXXXX"],
    ids=["0-9-2", "0-8-0", "http", "garbage"],
)
def test_bad_protocol_header_gets_supported_version(broker: BrokerHandle, header: bytes) -> None:
    with raw_client(broker) as client:
        client.send(header)
        started = time.monotonic()
        assert client.read_available(3) == PROTOCOL_HEADER
        assert client.eof
        assert time.monotonic() - started < 1.0


def test_vhost_not_found(broker: BrokerHandle) -> None:
    with raw_client(broker) as client:
        _tuned(client)
        client.tune_ok(2047, 131072, 0)
        client.send_frame(commands.Connection.Open("nope"))
        closing = client.wait_for_close(5, reply_close_ok=True)
        assert closing.close is not None
        assert close_fields(closing.close) == (530, "NOT_ALLOWED - vhost nope not found", 10, 40)


def test_vhost_not_found_pika(broker: BrokerHandle) -> None:
    params = broker.params(virtual_host="nope")
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as excinfo:
        pika.BlockingConnection(params)
    assert "(530) 'NOT_ALLOWED - vhost nope not found'" in str(excinfo.value)


def test_channel_open_before_connection_open(broker: BrokerHandle) -> None:
    with raw_client(broker) as client:
        _tuned(client)
        client.tune_ok(2047, 131072, 0)
        client.send_frame(commands.Channel.Open(), 1)
        closing = client.wait_for_close(5, reply_close_ok=True)
        assert closing.close is not None
        assert close_fields(closing.close) == (
            505,
            "UNEXPECTED_FRAME - type 1, all octets = <<0,20,0,10,1,48>>",
            0,
            0,
        )


def test_guest_refused_over_non_loopback(broker: BrokerHandle) -> None:
    assert broker.nonloopback is not None
    with broker.nonloopback() as (host, port):
        with RawAMQPClient(host, port, timeout=8) as client:
            client.start()
            client.start_ok(client_properties=CLIENT_PROPERTIES)
            closing = client.wait_for_close(8)
            assert closing.close is not None
            assert close_fields(closing.close) == (403, LOGIN_REFUSED, 0, 0)
        params = pika.URLParameters(f"amqp://guest:guest@{host}:{port}/%2F")
        with pytest.raises(pika.exceptions.ProbableAuthenticationError) as excinfo:
            pika.BlockingConnection(params)
        assert f"(403) '{LOGIN_REFUSED}'" in str(excinfo.value)


def test_heartbeats_both_ways(broker: BrokerHandle) -> None:
    """heartbeat=1: the server beats every 0.5 s; it drops a silent peer after ~3 s without a
    close frame, and keeps a peer that sends heartbeats. Both clients run side by side."""
    with raw_client(broker, timeout=8) as silent, raw_client(broker, timeout=8) as beating:
        silent.handshake(heartbeat=1)
        beating.handshake(heartbeat=1)
        started = time.monotonic()
        beats = 0
        other_frames = []
        dropped_after = None
        next_beat = started
        while time.monotonic() < started + 4.5:
            if time.monotonic() >= next_beat:
                beating.send_heartbeat()
                next_beat += 0.4
            for _ in beating.frames(0.02):
                pass
            assert not beating.eof
            if dropped_after is None:
                for frame in silent.frames(0.05):
                    if frame.frame_type == 8:
                        beats += 1
                    else:
                        other_frames.append(frame)
                if silent.eof:
                    dropped_after = time.monotonic() - started
        assert other_frames == []
        assert dropped_after is not None
        assert 2.0 <= dropped_after <= 4.0
        assert beats >= 3
        beating.open_channel(1)
        beating.close_connection()
