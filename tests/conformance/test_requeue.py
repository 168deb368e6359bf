"""Requeue: order and flags after channel close, connection close, TCP loss, nack/reject,
recover; quorum's x-delivery-count."""

from __future__ import annotations

from typing import Any

import pika.exceptions
import pytest
from pamqp import commands

from tests.conformance.helpers import (
    QUEUE_TYPES,
    BrokerHandle,
    Got,
    connection,
    counts,
    get_all,
    make_consumer,
    publish,
    publish_confirmed,
    pump,
    raw_ready,
    settle,
    temp_queue,
)
from tests.support.raw_amqp import RawAMQPClient

M5 = ["m1", "m2", "m3", "m4", "m5"]


def _delivery_count(message: Got) -> Any:
    """The x-delivery-count header, or None when the message carries none."""
    return (message.headers or {}).get("x-delivery-count")


def _summary(messages: list[Got]) -> list[tuple[str, bool, Any]]:
    return [(m.body, m.redelivered, _delivery_count(m)) for m in messages]


def _raw_consumer(broker: BrokerHandle, queue: str, prefetch: int, count: int) -> RawAMQPClient:
    """A raw-socket consumer holding `count` unacked deliveries (to be dropped by the test)."""
    client = raw_ready(broker, channels=1)
    client.call(commands.Basic.Qos(prefetch_count=prefetch), 1, commands.Basic.QosOk)
    client.call(
        commands.Basic.Consume(queue=queue, consumer_tag="victim"), 1, commands.Basic.ConsumeOk
    )
    for _ in range(count):
        client.read_until(lambda f: f.is_method(commands.Basic.Deliver))
    return client


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
@pytest.mark.parametrize("how", ["channel-close", "connection-close", "tcp-drop"])
def test_requeue_order_after_close(broker: BrokerHandle, queue_type: str, how: str) -> None:
    """Scenario 9: m1-m5, prefetch 2, no acks, then close: get gives m1..m5 in order and only
    m1, m2 are redelivered. Quorum marks them with x-delivery-count; basic.get always shows it."""
    with temp_queue(broker, queue_type) as name:
        publish(broker, name, M5)
        if how == "tcp-drop":
            victim = _raw_consumer(broker, name, prefetch=2, count=2)
            victim.abort()
        else:
            with connection(broker) as conn:
                consumer = make_consumer(conn, prefetch=2).start(name)
                assert pump([conn], lambda: len(consumer.received) == 2)
                settle([conn], 0.1)
                assert consumer.bodies == ["m1", "m2"]
                if how == "channel-close":
                    consumer.channel.close()
        with connection(broker) as conn:
            channel = conn.channel()
            assert counts(broker, name, (5, 0)) == (5, 0)
            got = get_all(channel, name)
        expected_count = {"classic": (None, None), "quorum": (1, 0)}[queue_type]
        assert _summary(got) == [
            ("m1", True, expected_count[0]),
            ("m2", True, expected_count[0]),
            ("m3", False, expected_count[1]),
            ("m4", False, expected_count[1]),
            ("m5", False, expected_count[1]),
        ]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_kill_and_redeliver(broker: BrokerHandle, queue_type: str) -> None:
    """A consumer connection dropped without close: its unacked messages come back, redelivered,
    to the other consumer."""
    with temp_queue(broker, queue_type) as name:
        publish(broker, name, ["m1", "m2", "m3", "m4"])
        victim = _raw_consumer(broker, name, prefetch=2, count=2)  # holds m1, m2
        try:
            with connection(broker) as conn:
                survivor = make_consumer(conn, prefetch=10).start(name)
                assert pump([conn], lambda: len(survivor.received) == 2)
                assert survivor.bodies == ["m3", "m4"]
                victim.abort()
                assert pump([conn], lambda: len(survivor.received) == 4)
                settle([conn], 0.2)
                for message in survivor.received:
                    survivor.channel.basic_ack(message.delivery_tag)
                first = {"classic": None, "quorum": None}[queue_type]
                again = {"classic": None, "quorum": 1}[queue_type]
                assert _summary(survivor.received) == [
                    ("m3", False, first),
                    ("m4", False, first),
                    ("m1", True, again),
                    ("m2", True, again),
                ]
                assert [m.delivery_tag for m in survivor.received] == [1, 2, 3, 4]
        finally:
            victim.close()
        assert counts(broker, name, (0, 0)) == (0, 0)


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_kill_worker_mid_stream_round_robin(broker: BrokerHandle, queue_type: str) -> None:
    """Round-robin to a pika worker and a raw worker; the raw one dies holding m1 and m3."""
    with temp_queue(broker, queue_type) as name:
        victim = raw_ready(broker, channels=1)
        try:
            victim.call(commands.Basic.Qos(prefetch_count=5), 1, commands.Basic.QosOk)
            with connection(broker) as conn:
                victim.call(
                    commands.Basic.Consume(queue=name, consumer_tag="victim"),
                    1,
                    commands.Basic.ConsumeOk,
                )
                survivor = make_consumer(conn, prefetch=5).start(name)
                publish(broker, name, ["m1", "m2", "m3", "m4"])
                assert pump([conn], lambda: len(survivor.received) == 2)
                assert survivor.bodies == ["m2", "m4"]
                for _ in range(2):
                    victim.read_until(lambda f: f.is_method(commands.Basic.Deliver))
                victim.abort()
                assert pump([conn], lambda: len(survivor.received) == 4)
                assert [(m.body, m.redelivered) for m in survivor.received[2:]] == [
                    ("m1", True),
                    ("m3", True),
                ]
        finally:
            victim.close()


@pytest.mark.parametrize("method", ["nack", "reject"])
@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_nack_requeue_position(broker: BrokerHandle, queue_type: str, method: str) -> None:
    """Classic: the message returns to its original position. Quorum: to the back."""
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        channel = conn.channel()
        publish_confirmed(channel, name, ["n1", "n2", "n3"])
        got, _props, _body = channel.basic_get(name)
        if method == "nack":
            channel.basic_nack(got.delivery_tag, requeue=True)
        else:
            channel.basic_reject(got.delivery_tag, requeue=True)
        expected = {
            "classic": [("n1", True, None), ("n2", False, None), ("n3", False, None)],
            "quorum": [("n2", False, 0), ("n3", False, 0), ("n1", True, 1)],
        }[queue_type]
        assert _summary(get_all(channel, name)) == expected


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_nack_requeue_redelivers_to_consumer(broker: BrokerHandle, queue_type: str) -> None:
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        publish(broker, name, ["n1", "n2", "n3"])
        consumer = make_consumer(conn, prefetch=1).start(name)
        assert pump([conn], lambda: len(consumer.received) == 1)
        consumer.channel.basic_nack(consumer.received[0].delivery_tag, requeue=True)

        acked: set[int] = set()

        def ack_new() -> bool:
            for message in consumer.received[1:]:
                if message.delivery_tag not in acked:
                    consumer.channel.basic_ack(message.delivery_tag)
                    acked.add(message.delivery_tag)
            return len(consumer.received) == 4

        assert pump([conn], ack_new)
        expected = {
            "classic": [
                ("n1", False, None),
                ("n1", True, None),
                ("n2", False, None),
                ("n3", False, None),
            ],
            "quorum": [
                ("n1", False, None),
                ("n2", False, None),
                ("n3", False, None),
                ("n1", True, 1),
            ],
        }[queue_type]
        assert _summary(consumer.received) == expected


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_quorum_returns_go_before_new_messages(broker: BrokerHandle, queue_type: str) -> None:
    """Returned (channel closed) messages are served first; nacked ones go behind them."""
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        channel = conn.channel()
        publish_confirmed(channel, name, ["a", "b", "c", "d"])
        holder = conn.channel()
        for _ in range(2):
            holder.basic_get(name)  # a, b
        taken, _props, _body = channel.basic_get(name)  # c
        holder.close()  # a, b returned
        channel.basic_nack(taken.delivery_tag, requeue=True)  # c requeued
        expected = {
            "classic": ["a", "b", "c", "d"],
            "quorum": ["a", "b", "d", "c"],
        }[queue_type]
        assert [m.body for m in get_all(channel, name)] == expected


def test_basic_get_delivery_count_header_on_quorum(broker: BrokerHandle) -> None:
    """basic.get on a quorum queue always carries x-delivery-count (0 when never delivered);
    consumer deliveries carry it only once the message was returned."""
    with temp_queue(broker, "quorum") as name, connection(broker) as conn:
        channel = conn.channel()
        properties = pika.BasicProperties(headers={"app": "kept"})
        publish_confirmed(channel, name, ["g1", "g2"], properties=properties)
        method, props, _body = channel.basic_get(name, auto_ack=True)
        assert (method.redelivered, props.headers) == (
            False,
            {"app": "kept", "x-delivery-count": 0},
        )
        consumer = make_consumer(conn, prefetch=1).start(name)
        assert pump([conn], lambda: len(consumer.received) == 1)
        assert (consumer.received[0].redelivered, consumer.received[0].headers) == (
            False,
            {"app": "kept"},
        )
        consumer.channel.basic_reject(consumer.received[0].delivery_tag, requeue=True)
        assert pump([conn], lambda: len(consumer.received) == 2)
        assert (consumer.received[1].redelivered, consumer.received[1].headers) == (
            True,
            {"app": "kept", "x-delivery-count": 1},
        )
        consumer.channel.basic_ack(consumer.received[1].delivery_tag)


def test_delivery_count_accumulates(broker: BrokerHandle) -> None:
    """Every requeue path increments x-delivery-count: nack, reject, recover, channel close."""
    with temp_queue(broker, "quorum") as name, connection(broker) as conn:
        channel = conn.channel()
        publish_confirmed(channel, name, ["x"])
        seen = []
        method, props, _ = channel.basic_get(name)
        seen.append(props.headers["x-delivery-count"])
        channel.basic_nack(method.delivery_tag, requeue=True)
        method, props, _ = channel.basic_get(name)
        seen.append(props.headers["x-delivery-count"])
        channel.basic_reject(method.delivery_tag, requeue=True)
        method, props, _ = channel.basic_get(name)
        seen.append(props.headers["x-delivery-count"])
        channel.basic_recover(requeue=True)
        method, props, _ = channel.basic_get(name)
        seen.append(props.headers["x-delivery-count"])
        channel.close()
        channel = conn.channel()
        method, props, _ = channel.basic_get(name, auto_ack=True)
        seen.append(props.headers["x-delivery-count"])
        assert method.redelivered
        assert seen == [0, 1, 2, 3, 4]


def test_classic_messages_get_no_delivery_count(broker: BrokerHandle) -> None:
    with temp_queue(broker, "classic") as name, connection(broker) as conn:
        channel = conn.channel()
        publish_confirmed(channel, name, ["x"])
        method, props, _ = channel.basic_get(name)
        channel.basic_nack(method.delivery_tag, requeue=True)
        method, props, _ = channel.basic_get(name, auto_ack=True)
        assert (method.redelivered, props.headers) == (True, None)


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_basic_recover_requeues_consumer_deliveries(broker: BrokerHandle, queue_type: str) -> None:
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        publish(broker, name, M5)
        consumer = make_consumer(conn, prefetch=3).start(name)
        assert pump([conn], lambda: len(consumer.received) == 3)
        settle([conn], 0.1)
        consumer.channel.basic_recover(requeue=True)
        assert pump([conn], lambda: len(consumer.received) == 6)
        settle([conn], 0.2)
        expected = {
            # classic: back in their places, so they come first again
            "classic": [("m1", True, None), ("m2", True, None), ("m3", True, None)],
            # quorum: recover is a requeue to the back of the queue
            "quorum": [("m4", False, None), ("m5", False, None), ("m1", True, 1)],
        }[queue_type]
        assert _summary(consumer.received[3:]) == expected
        assert [m.delivery_tag for m in consumer.received] == [1, 2, 3, 4, 5, 6]


def test_basic_recover_without_requeue_is_not_implemented(broker: BrokerHandle) -> None:
    with connection(broker) as conn:
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as excinfo:
            conn.channel().basic_recover(requeue=False)
        assert (excinfo.value.reply_code, excinfo.value.reply_text) == (
            540,
            "NOT_IMPLEMENTED - requeue=false",
        )


@pytest.mark.filterwarnings("ignore:This command is deprecated:DeprecationWarning")
def test_recover_async(broker: BrokerHandle) -> None:
    """recover-async(requeue=true) has no reply; requeue=false is a 540 (class 60/100)."""
    client = raw_ready(broker, channels=1)
    try:
        client.send_frame(commands.Basic.RecoverAsync(requeue=True), 1)
        client.call(commands.Basic.Recover(requeue=True), 1, commands.Basic.RecoverOk)
        client.send_frame(commands.Basic.RecoverAsync(requeue=False), 1)
        frame = client.read_until(lambda f: True)
        assert frame.is_method(commands.Connection.Close)
        close = frame.method
        assert (close.reply_code, close.reply_text, close.class_id, close.method_id) == (
            540,
            "NOT_IMPLEMENTED - requeue=false",
            60,
            100,
        )
    finally:
        client.close()


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_auto_ack_messages_are_lost_on_drop(broker: BrokerHandle, queue_type: str) -> None:
    with temp_queue(broker, queue_type) as name:
        publish(broker, name, ["a", "b", "c"])
        client = raw_ready(broker, channels=1)
        try:
            client.call(
                commands.Basic.Consume(queue=name, no_ack=True), 1, commands.Basic.ConsumeOk
            )
            for _ in range(3):
                client.read_until(lambda f: f.is_method(commands.Basic.Deliver))
        finally:
            client.abort()
        assert counts(broker, name, (0, 0)) == (0, 0)
