"""Dispatch among consumers: round-robin, fair dispatch with prefetch, qos scopes, priorities."""

from __future__ import annotations

import pika.exceptions
import pytest

from tests.conformance.helpers import (
    QUEUE_TYPES,
    BrokerHandle,
    connection,
    counts,
    make_consumer,
    publish,
    publish_confirmed,
    pump,
    settle,
    temp_queue,
)

MESSAGES = [f"m{i}" for i in range(1, 7)]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_round_robin(broker: BrokerHandle, queue_type: str) -> None:
    """Scenario 6: prefetch 0, C1 subscribes first; m1,m3,m5 go to C1 and m2,m4,m6 to C2."""
    with (
        temp_queue(broker, queue_type) as name,
        connection(broker) as conn1,
        connection(broker) as conn2,
    ):
        c1 = make_consumer(conn1).start(name)
        c2 = make_consumer(conn2).start(name)
        assert counts(broker, name, (0, 2)) == (0, 2)
        publish(broker, name, MESSAGES)
        assert pump([conn1, conn2], lambda: len(c1.received) + len(c2.received) == 6)
        assert c1.bodies == ["m1", "m3", "m5"]
        assert c2.bodies == ["m2", "m4", "m6"]
        assert all(not m.redelivered for m in c1.received + c2.received)
        assert [m.delivery_tag for m in c1.received] == [1, 2, 3]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_queued_messages_go_to_the_first_subscriber(broker: BrokerHandle, queue_type: str) -> None:
    """Scenario 6 (second part): with unlimited prefetch, C1 takes everything already queued."""
    with temp_queue(broker, queue_type) as name:
        publish(broker, name, MESSAGES)
        with connection(broker) as conn1, connection(broker) as conn2:
            c1 = make_consumer(conn1).start(name)
            assert pump([conn1], lambda: len(c1.received) == 6)
            c2 = make_consumer(conn2).start(name)
            settle([conn1, conn2], 0.3)
            assert c1.bodies == MESSAGES
            assert c2.bodies == []


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_fair_dispatch(broker: BrokerHandle, queue_type: str) -> None:
    """Scenario 7: prefetch 1, W1 never acks; W1 holds one message and W2 processes three."""
    with (
        temp_queue(broker, queue_type) as name,
        connection(broker) as conn1,
        connection(broker) as conn2,
    ):
        w1 = make_consumer(conn1, prefetch=1).start(name)
        w2 = make_consumer(conn2, prefetch=1).start(name)
        w2_acked: list[str] = []

        def w2_work() -> bool:
            for message in w2.received[len(w2_acked) :]:
                w2.channel.basic_ack(message.delivery_tag)
                w2_acked.append(message.body)
            return len(w2_acked) == 3

        publish(broker, name, ["m1", "m2", "m3", "m4"])
        assert pump([conn1, conn2], w2_work)
        settle([conn1, conn2], 0.3)
        assert w1.bodies == ["m1"]
        assert w2.bodies == ["m2", "m3", "m4"]
        assert counts(broker, name, (0, 2)) == (0, 2)


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_prefetch_limits_unacked(broker: BrokerHandle, queue_type: str) -> None:
    with temp_queue(broker, queue_type) as name:
        publish(broker, name, MESSAGES)
        with connection(broker) as conn:
            consumer = make_consumer(conn, prefetch=2).start(name)
            assert pump([conn], lambda: len(consumer.received) == 2)
            settle([conn], 0.2)
            assert consumer.bodies == ["m1", "m2"]
            assert counts(broker, name, (4, 1)) == (4, 1)
            consumer.channel.basic_ack(consumer.received[0].delivery_tag)
            assert pump([conn], lambda: len(consumer.received) == 3)
            settle([conn], 0.2)
            assert consumer.bodies == ["m1", "m2", "m3"]
            consumer.channel.basic_ack(0, multiple=True)
            assert pump([conn], lambda: len(consumer.received) == 5)
            assert consumer.bodies == MESSAGES[:5]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_auto_ack_consumer_ignores_prefetch(broker: BrokerHandle, queue_type: str) -> None:
    with temp_queue(broker, queue_type) as name:
        publish(broker, name, MESSAGES)
        with connection(broker) as conn:
            consumer = make_consumer(conn, prefetch=1).start(name, auto_ack=True)
            assert pump([conn], lambda: len(consumer.received) == 6)
            assert consumer.bodies == MESSAGES
            assert counts(broker, name, (0, 1)) == (0, 1)


def test_qos_applies_to_consumers_created_afterwards(broker: BrokerHandle) -> None:
    with temp_queue(broker) as name:
        publish(broker, name, MESSAGES)
        with connection(broker) as conn:
            channel = conn.channel()
            a: list[str] = []
            b: list[str] = []
            channel.basic_qos(prefetch_count=1)
            channel.basic_consume(name, lambda _c, _m, _p, body: a.append(body.decode()))
            channel.basic_qos(prefetch_count=3)
            channel.basic_consume(name, lambda _c, _m, _p, body: b.append(body.decode()))
            assert pump([conn], lambda: len(a) + len(b) == 4)
            settle([conn], 0.3)
            assert (a, b) == (["m1"], ["m2", "m3", "m4"])


def test_global_qos_on_classic_queue(broker: BrokerHandle) -> None:
    """global=true limits unacked deliveries across the channel's consumers."""
    with temp_queue(broker) as name, connection(broker) as conn:
        channel = conn.channel()
        got: list[tuple[str, str]] = []
        channel.basic_qos(prefetch_count=2, global_qos=True)
        channel.basic_consume(name, lambda _c, m, _p, body: got.append(("A", body.decode())))
        channel.basic_consume(name, lambda _c, m, _p, body: got.append(("B", body.decode())))
        publish(broker, name, MESSAGES)
        assert pump([conn], lambda: len(got) == 2)
        settle([conn], 0.3)
        assert got == [("A", "m1"), ("B", "m2")]
        assert counts(broker, name, (4, 2)) == (4, 2)


def test_global_and_per_consumer_qos_both_apply(broker: BrokerHandle) -> None:
    with temp_queue(broker) as name, connection(broker) as conn:
        channel = conn.channel()
        got: list[tuple[str, str]] = []
        channel.basic_qos(prefetch_count=1)  # per consumer
        channel.basic_qos(prefetch_count=3, global_qos=True)  # whole channel
        for consumer in ("A", "B", "C", "D"):
            channel.basic_consume(
                name, lambda _c, m, _p, body, who=consumer: got.append((who, body.decode()))
            )
        publish(broker, name, MESSAGES)
        assert pump([conn], lambda: len(got) == 3)
        settle([conn], 0.3)
        assert got == [("A", "m1"), ("B", "m2"), ("C", "m3")]


def test_global_qos_on_quorum_queue_is_not_implemented(broker: BrokerHandle) -> None:
    with temp_queue(broker, "quorum") as name, connection(broker) as conn:
        channel = conn.channel()
        channel.basic_qos(prefetch_count=1, global_qos=True)
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as excinfo:
            channel.basic_consume(name, lambda *args: None)
        assert (excinfo.value.reply_code, excinfo.value.reply_text) == (
            540,
            f"NOT_IMPLEMENTED - queue '{name}' in vhost '/' does not support global qos",
        )


def test_global_qos_zero_on_quorum_queue_is_fine(broker: BrokerHandle) -> None:
    with temp_queue(broker, "quorum") as name, connection(broker) as conn:
        channel = conn.channel()
        channel.basic_qos(prefetch_count=0, global_qos=True)
        channel.basic_consume(name, lambda *args: None)
        assert counts(broker, name, (0, 1)) == (0, 1)


def test_consumer_priority(broker: BrokerHandle) -> None:
    """A higher x-priority consumer gets messages while it has credit, then the others do."""
    with temp_queue(broker) as name, connection(broker) as conn:
        low = make_consumer(conn, prefetch=10).start(name)
        high = make_consumer(conn, prefetch=2).start(name, arguments={"x-priority": 5})
        publish(broker, name, ["m1", "m2", "m3", "m4"])
        assert pump([conn], lambda: len(low.received) + len(high.received) == 4)
        assert high.bodies == ["m1", "m2"]
        assert low.bodies == ["m3", "m4"]


def test_basic_get_ignores_prefetch(broker: BrokerHandle) -> None:
    with temp_queue(broker) as name, connection(broker) as conn:
        channel = conn.channel()
        publish_confirmed(channel, name, ["a", "b", "c"])
        channel.basic_qos(prefetch_count=1)
        assert [channel.basic_get(name)[2] for _ in range(3)] == [b"a", b"b", b"c"]
