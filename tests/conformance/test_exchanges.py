"""Exchanges: predeclared ones, reserved names, routing, e2e bindings, publish errors."""

from __future__ import annotations

import pika
import pika.exceptions
import pytest
from pamqp import body, commands, frame, header

from tests.conformance.helpers import (
    BrokerHandle,
    close_fields,
    connection,
    delete_exchange,
    expect_channel_close,
    get_all,
    raw_ready,
    read_connection_close,
    unique,
)

DEFAULT_EXCHANGE_REFUSED = (403, "ACCESS_REFUSED - operation not permitted on the default exchange")


def _closed(excinfo: pytest.ExceptionInfo) -> tuple[int, str]:
    return excinfo.value.reply_code, excinfo.value.reply_text


@pytest.mark.parametrize(
    ("name", "kind", "internal"),
    [
        ("amq.direct", "direct", False),
        ("amq.fanout", "fanout", False),
        ("amq.topic", "topic", False),
        ("amq.headers", "headers", False),
        ("amq.match", "headers", False),
        ("amq.rabbitmq.trace", "topic", True),
    ],
)
def test_predeclared_exchanges(broker: BrokerHandle, name: str, kind: str, internal: bool) -> None:
    with connection(broker) as conn:
        channel = conn.channel()
        channel.exchange_declare(name, passive=True)
        channel.exchange_declare(name, kind, durable=True, internal=internal)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.exchange_declare(name, kind, durable=False, internal=internal)
        assert _closed(excinfo) == (
            406,
            f"PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '{name}' in "
            "vhost '/': received 'false' but current is 'true'",
        )


def test_predeclared_exchange_wrong_type(broker: BrokerHandle) -> None:
    with connection(broker) as conn:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            conn.channel().exchange_declare("amq.direct", "fanout", durable=True)
        assert _closed(excinfo) == (
            406,
            "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'amq.direct' in "
            "vhost '/': received 'fanout' but current is 'direct'",
        )


@pytest.mark.parametrize("name", ["amq.foo", "amq.default"])
def test_reserved_exchange_names(broker: BrokerHandle, name: str) -> None:
    with connection(broker) as conn:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            conn.channel().exchange_declare(name, "direct", durable=True)
        assert _closed(excinfo) == (
            403,
            f"ACCESS_REFUSED - exchange name '{name}' contains reserved prefix 'amq.*'",
        )
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            conn.channel().exchange_declare(name, passive=True)
        assert _closed(excinfo) == (404, f"NOT_FOUND - no exchange '{name}' in vhost '/'")


DEFAULT_EXCHANGE_OPS = {
    "declare": (lambda _q: commands.Exchange.Declare(exchange="", durable=True), (40, 10)),
    "declare-passive": (lambda _q: commands.Exchange.Declare(exchange="", passive=True), (40, 10)),
    "delete": (lambda _q: commands.Exchange.Delete(exchange=""), (40, 20)),
    "queue-bind": (
        lambda q: commands.Queue.Bind(queue=q, exchange="", routing_key="k"),
        (50, 20),
    ),
    "queue-unbind": (
        lambda q: commands.Queue.Unbind(queue=q, exchange="", routing_key="k"),
        (50, 50),
    ),
    "exchange-bind-destination": (
        lambda _q: commands.Exchange.Bind(destination="", source="amq.direct", routing_key="k"),
        (40, 30),
    ),
    "exchange-bind-source": (
        lambda _q: commands.Exchange.Bind(destination="amq.direct", source="", routing_key="k"),
        (40, 30),
    ),
}


@pytest.mark.parametrize("op", list(DEFAULT_EXCHANGE_OPS))
def test_default_exchange_is_off_limits(broker: BrokerHandle, op: str) -> None:
    make_method, ids = DEFAULT_EXCHANGE_OPS[op]
    client = raw_ready(broker, channels=1)
    try:
        queue = client.call(
            commands.Queue.Declare(queue="", exclusive=True), 1, commands.Queue.DeclareOk
        ).queue
        client.send_frame(make_method(queue), 1)
        close = expect_channel_close(client, 1)
        assert close_fields(close) == (*DEFAULT_EXCHANGE_REFUSED, *ids)
        client.close_connection()
    finally:
        client.close()


@pytest.mark.parametrize("kind", ["bogus", "x-consistent-hash"])
def test_unknown_exchange_type_is_a_connection_error(broker: BrokerHandle, kind: str) -> None:
    name = unique("x")
    client = raw_ready(broker, channels=1)
    try:
        client.send_frame(commands.Exchange.Declare(exchange=name, exchange_type=kind), 1)
        assert close_fields(read_connection_close(client)) == (
            503,
            f"COMMAND_INVALID - unknown exchange type '{kind}'",
            40,
            10,
        )
    finally:
        client.close()


def test_exchange_redeclare_mismatches(broker: BrokerHandle) -> None:
    name = unique("x")
    prefix = "PRECONDITION_FAILED - inequivalent arg"
    where = f"for exchange '{name}' in vhost '/'"
    cases = [
        (
            {"exchange_type": "fanout"},
            f"{prefix} 'type' {where}: received 'fanout' but current is 'direct'",
        ),
        ({"durable": True}, f"{prefix} 'durable' {where}: received 'true' but current is 'false'"),
        (
            {"auto_delete": True},
            f"{prefix} 'auto_delete' {where}: received 'true' but current is 'false'",
        ),
        (
            {"internal": True},
            f"{prefix} 'internal' {where}: received 'true' but current is 'false'",
        ),
        (
            {"arguments": {"alternate-exchange": "foo"}},
            f"{prefix} 'alternate-exchange' {where}: received the value 'foo' of type 'longstr' "
            "but current is none",
        ),
    ]
    with connection(broker) as conn:
        conn.channel().exchange_declare(name, "direct")
        try:
            for kwargs, text in cases:
                kwargs = {"exchange_type": "direct", **kwargs}
                with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
                    conn.channel().exchange_declare(name, **kwargs)
                assert _closed(excinfo) == (406, text), kwargs
            # a passive declare does not compare anything
            conn.channel().exchange_declare(name, "fanout", passive=True)
        finally:
            conn.channel().exchange_delete(name)


@pytest.mark.parametrize("name", ["amq.direct", "amq.rabbitmq.trace", "amq.nope"])
def test_delete_system_exchange_refused(broker: BrokerHandle, name: str) -> None:
    with connection(broker) as conn:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            conn.channel().exchange_delete(name)
        assert _closed(excinfo) == (
            403,
            f"ACCESS_REFUSED - deletion of system exchange '{name}' in vhost '/' not allowed",
        )


def test_delete_missing_exchange_is_ok(broker: BrokerHandle) -> None:
    with connection(broker) as conn:
        conn.channel().exchange_delete(unique("x"))


def test_delete_if_unused_counts_only_source_bindings(broker: BrokerHandle) -> None:
    source, destination = unique("xs"), unique("xd")
    with connection(broker) as conn:
        channel = conn.channel()
        channel.exchange_declare(source, "direct")
        channel.exchange_declare(destination, "fanout")
        queue = channel.queue_declare("", exclusive=True).method.queue
        try:
            channel.exchange_bind(destination, source, routing_key="k")
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
                conn.channel().exchange_delete(source, if_unused=True)
            assert _closed(excinfo) == (
                406,
                f"PRECONDITION_FAILED - exchange '{source}' in vhost '/' in use",
            )
            # Being the destination of a binding is not "in use".
            channel.exchange_delete(destination, if_unused=True)
            channel.exchange_declare(destination, "fanout")
            channel.queue_bind(queue, destination)
            with pytest.raises(pika.exceptions.ChannelClosedByBroker):
                conn.channel().exchange_delete(destination, if_unused=True)
            channel = conn.channel()
            channel.queue_unbind(queue, destination)
            channel.exchange_delete(destination, if_unused=True)
        finally:
            delete_exchange(broker, source)
            delete_exchange(broker, destination)


# -- routing -------------------------------------------------------------------------------


def test_direct_fanout_topic_routing(broker: BrokerHandle) -> None:
    with connection(broker) as conn:
        channel = conn.channel()
        direct, fanout, topic = unique("xd"), unique("xf"), unique("xt")
        channel.exchange_declare(direct, "direct", auto_delete=False)
        channel.exchange_declare(fanout, "fanout")
        channel.exchange_declare(topic, "topic")
        try:
            q_direct = channel.queue_declare("", exclusive=True).method.queue
            channel.queue_bind(q_direct, direct, routing_key="black")
            q_fan1 = channel.queue_declare("", exclusive=True).method.queue
            q_fan2 = channel.queue_declare("", exclusive=True).method.queue
            channel.queue_bind(q_fan1, fanout, routing_key="ignored")
            channel.queue_bind(q_fan2, fanout)
            q_star = channel.queue_declare("", exclusive=True).method.queue
            q_hash = channel.queue_declare("", exclusive=True).method.queue
            q_mid = channel.queue_declare("", exclusive=True).method.queue
            channel.queue_bind(q_star, topic, routing_key="*.orange.*")
            channel.queue_bind(q_hash, topic, routing_key="lazy.#")
            channel.queue_bind(q_mid, topic, routing_key="#.rabbit")
            channel.confirm_delivery()
            for key in ("black", "BLACK", "green"):
                channel.basic_publish(direct, key, key.encode())
            channel.basic_publish(fanout, "anything", b"fan")
            for key in (
                "quick.orange.rabbit",
                "lazy.orange.elephant",
                "quick.orange.fox",
                "lazy.brown.fox",
                "lazy",
                "quick.brown.rabbit",
                "orange",
                "quick.orange.male.rabbit",
                "rabbit",
            ):
                channel.basic_publish(topic, key, key.encode())

            def got(queue: str) -> list[str]:
                return [m.body for m in get_all(channel, queue)]

            assert got(q_direct) == ["black"]
            assert got(q_fan1) == ["fan"]
            assert got(q_fan2) == ["fan"]
            assert got(q_star) == [
                "quick.orange.rabbit",
                "lazy.orange.elephant",
                "quick.orange.fox",
            ]
            assert got(q_hash) == ["lazy.orange.elephant", "lazy.brown.fox", "lazy"]
            assert got(q_mid) == [
                "quick.orange.rabbit",
                "quick.brown.rabbit",
                "quick.orange.male.rabbit",
                "rabbit",
            ]
        finally:
            for name in (direct, fanout, topic):
                conn.channel().exchange_delete(name)


def test_binding_twice_delivers_once(broker: BrokerHandle) -> None:
    with connection(broker) as conn:
        channel = conn.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, "amq.topic", routing_key="a.*")
        channel.queue_bind(queue, "amq.topic", routing_key="a.*")
        channel.queue_bind(queue, "amq.topic", routing_key="#")
        channel.confirm_delivery()
        channel.basic_publish("amq.topic", "a.b", b"once")
        assert [m.body for m in get_all(channel, queue)] == ["once"]


def test_exchange_to_exchange_binding(broker: BrokerHandle) -> None:
    source, destination = unique("xs"), unique("xd")
    with connection(broker) as conn:
        channel = conn.channel()
        channel.exchange_declare(source, "direct")
        channel.exchange_declare(destination, "fanout")
        try:
            queue = channel.queue_declare("", exclusive=True).method.queue
            channel.exchange_bind(destination, source, routing_key="k")
            channel.queue_bind(queue, destination, routing_key="ignored")
            channel.confirm_delivery()
            channel.basic_publish(source, "k", b"via-e2e")
            channel.basic_publish(source, "other", b"not-routed")
            method, _props, body = channel.basic_get(queue, auto_ack=True)
            assert (body, method.exchange, method.routing_key) == (b"via-e2e", source, "k")
            assert channel.basic_get(queue) == (None, None, None)
            channel.exchange_unbind(destination, source, routing_key="k")
            channel.exchange_unbind(destination, source, routing_key="k")  # idempotent
            channel.basic_publish(source, "k", b"after-unbind")
            assert channel.basic_get(queue) == (None, None, None)
        finally:
            delete_exchange(broker, source)
            delete_exchange(broker, destination)


def test_bind_errors(broker: BrokerHandle) -> None:
    missing = unique("missing")
    with connection(broker) as conn:
        queue = conn.channel().queue_declare("", exclusive=True).method.queue
        cases = [
            (lambda ch: ch.queue_bind(queue, missing), f"no exchange '{missing}'"),
            (lambda ch: ch.queue_bind(missing, "amq.direct"), f"no queue '{missing}'"),
            (lambda ch: ch.queue_bind(missing, missing), f"no exchange '{missing}'"),
            (lambda ch: ch.queue_bind(queue, "amq.default"), "no exchange 'amq.default'"),
            (lambda ch: ch.exchange_bind(missing, "amq.direct"), f"no exchange '{missing}'"),
            (lambda ch: ch.exchange_bind("amq.direct", missing), f"no exchange '{missing}'"),
        ]
        for call, what in cases:
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
                call(conn.channel())
            assert _closed(excinfo) == (404, f"NOT_FOUND - {what} in vhost '/'")


def test_unbind_is_lenient(broker: BrokerHandle) -> None:
    missing = unique("missing")
    with connection(broker) as conn:
        channel = conn.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_unbind(queue, "amq.direct", routing_key="never-bound")
        channel.queue_unbind(missing, "amq.direct", routing_key="k")
        channel.queue_unbind(queue, missing, routing_key="k")
        channel.exchange_unbind("amq.direct", "amq.fanout", routing_key="k")
        channel.exchange_unbind(missing, "amq.fanout", routing_key="k")
        assert channel.is_open


# -- publish -------------------------------------------------------------------------------


@pytest.mark.parametrize("exchange", ["nope", "amq.default"])
def test_publish_to_missing_exchange(broker: BrokerHandle, exchange: str) -> None:
    client = raw_ready(broker, channels=1)
    try:
        client.send_message(1, b"hi", exchange=exchange, routing_key="k")
        close = expect_channel_close(client, 1)
        assert close_fields(close) == (
            404,
            f"NOT_FOUND - no exchange '{exchange}' in vhost '/'",
            60,
            40,
        )
        client.close_connection()
    finally:
        client.close()


def test_publish_to_internal_exchange(broker: BrokerHandle) -> None:
    name = unique("xi")
    with connection(broker) as conn:
        conn.channel().exchange_declare(name, "fanout", internal=True)
        try:
            for exchange in (name, "amq.rabbitmq.trace"):
                channel = conn.channel()
                channel.basic_publish(exchange, "k", b"x")
                with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
                    channel.queue_declare("", exclusive=True)
                assert _closed(excinfo) == (
                    403,
                    f"ACCESS_REFUSED - cannot publish to internal exchange '{exchange}' in "
                    "vhost '/'",
                )
        finally:
            conn.channel().exchange_delete(name)


def test_mandatory_unroutable_returns(broker: BrokerHandle) -> None:
    returned = []
    with connection(broker) as conn:
        channel = conn.channel()
        channel.add_on_return_callback(
            lambda _ch, method, props, body: returned.append(
                (method.reply_code, method.reply_text, method.exchange, method.routing_key, body)
            )
        )
        properties = pika.BasicProperties(content_type="text/plain", headers={"a": 1})
        channel.basic_publish("", "tq-nowhere", b"r1", properties, mandatory=True)
        channel.basic_publish("amq.direct", "tq-nowhere", b"r2", mandatory=True)
        channel.basic_publish("amq.direct", "tq-nowhere", b"dropped")
        conn.process_data_events(time_limit=0.3)
        channel.queue_declare("", exclusive=True)  # a round trip after the publishes
        conn.process_data_events(time_limit=0.1)
    assert returned == [
        (312, "NO_ROUTE", "", "tq-nowhere", b"r1"),
        (312, "NO_ROUTE", "amq.direct", "tq-nowhere", b"r2"),
    ]


def test_immediate_is_not_implemented(broker: BrokerHandle) -> None:
    client = raw_ready(broker, channels=1)
    try:
        client.send(
            b"".join(
                [
                    frame.marshal(
                        commands.Basic.Publish(exchange="", routing_key="k", immediate=True), 1
                    ),
                    frame.marshal(header.ContentHeader(0, 1), 1),
                    frame.marshal(body.ContentBody(b"x"), 1),
                ]
            )
        )
        assert close_fields(read_connection_close(client)) == (
            540,
            "NOT_IMPLEMENTED - immediate=true",
            60,
            40,
        )
    finally:
        client.close()
