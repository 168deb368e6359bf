"""Consumer priorities (x-priority) together with prefetch credit."""

from __future__ import annotations

import pytest

from tests.conformance.helpers import (
    QUEUE_TYPES,
    BrokerHandle,
    Consumer,
    connection,
    make_consumer,
    publish,
    pump,
    settle,
    temp_queue,
)


def _total(consumers: list[Consumer]) -> int:
    return sum(len(c.received) for c in consumers)


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_high_priority_gets_messages_while_it_has_credit(
    broker: BrokerHandle, queue_type: str
) -> None:
    """high (x-priority 10, prefetch 2) and low (default priority, prefetch 10): high takes
    m1, m2, low the rest; once high acks one, the next message goes to high again."""
    with (
        temp_queue(broker, queue_type) as name,
        connection(broker) as conn_low,
        connection(broker) as conn_high,
    ):
        low = make_consumer(conn_low, prefetch=10).start(name)
        high = make_consumer(conn_high, prefetch=2).start(name, arguments={"x-priority": 10})
        conns = [conn_low, conn_high]
        publish(broker, name, ["m1", "m2", "m3", "m4"])
        assert pump(conns, lambda: _total([low, high]) == 4)
        high.channel.basic_ack(high.received[0].delivery_tag)
        # A round trip on the same channel: the ack reached the broker before the publish.
        high.channel.queue_declare(name, passive=True)
        publish(broker, name, ["m5"])
        assert pump(conns, lambda: _total([low, high]) == 5)
        publish(broker, name, ["m6"])
        assert pump(conns, lambda: _total([low, high]) == 6)
        settle(conns, 0.2)
        assert (high.bodies, low.bodies) == (["m1", "m2", "m5"], ["m3", "m4", "m6"])


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_priority_levels_and_round_robin_within_a_level(
    broker: BrokerHandle, queue_type: str
) -> None:
    """A and B (priority 5, prefetch 1) share round-robin, then C (priority 1, prefetch 1), then
    D (no priority, unlimited), then E (priority -1) only when everyone else is full."""
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        e = make_consumer(conn).start(name, arguments={"x-priority": -1})
        d = make_consumer(conn, prefetch=2).start(name)
        c = make_consumer(conn, prefetch=1).start(name, arguments={"x-priority": 1})
        a = make_consumer(conn, prefetch=1).start(name, arguments={"x-priority": 5})
        b = make_consumer(conn, prefetch=1).start(name, arguments={"x-priority": 5})
        everyone = [a, b, c, d, e]
        publish(broker, name, [f"m{i}" for i in range(1, 8)])
        assert pump([conn], lambda: _total(everyone) == 7)
        settle([conn], 0.2)
        assert [x.bodies for x in everyone] == [
            ["m1"],
            ["m2"],
            ["m3"],
            ["m4", "m5"],
            ["m6", "m7"],
        ]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_queued_messages_go_to_the_higher_priority_on_ack(
    broker: BrokerHandle, queue_type: str
) -> None:
    """With messages waiting and both consumers full, an ack from the low-priority consumer
    gives it the next message, and an ack from the high-priority one gives it the next."""
    with (
        temp_queue(broker, queue_type) as name,
        connection(broker) as conn_low,
        connection(broker) as conn_high,
    ):
        low = make_consumer(conn_low, prefetch=1).start(name)
        high = make_consumer(conn_high, prefetch=1).start(name, arguments={"x-priority": 3})
        conns = [conn_low, conn_high]
        publish(broker, name, ["m1", "m2", "m3", "m4"])
        assert pump(conns, lambda: _total([low, high]) == 2)
        assert (high.bodies, low.bodies) == (["m1"], ["m2"])
        low.channel.basic_ack(low.received[-1].delivery_tag)
        assert pump(conns, lambda: _total([low, high]) == 3)
        high.channel.basic_ack(high.received[-1].delivery_tag)
        assert pump(conns, lambda: _total([low, high]) == 4)
        settle(conns, 0.2)
        assert (high.bodies, low.bodies) == (["m1", "m4"], ["m2", "m3"])
