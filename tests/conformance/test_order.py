"""FIFO order on long queues when requeues (nack, reject, channel close) mix with new publishes.

Classic queues put every requeued message back in its original place. Quorum queues send
nack/reject requeues to the back and serve channel-close returns first (see FINDINGS.md).
"""

from __future__ import annotations

import pytest

from tests.conformance.helpers import (
    QUEUE_TYPES,
    BrokerHandle,
    Got,
    connection,
    get_all,
    make_consumer,
    publish,
    pump,
    settle,
    temp_queue,
)

MANY = 200


def _p(numbers: range | list[int]) -> list[str]:
    return [f"p{i}" for i in numbers]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_get_order_across_requeues_and_publishes(broker: BrokerHandle, queue_type: str) -> None:
    """p1..p200 queued; one channel gets p1..p10, nacks p3 and p5, publishes q1..q5, rejects
    p7 and closes (returning the other seven); then everything is read back with basic.get."""
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        publish(broker, name, _p(range(1, MANY + 1)))
        holder = conn.channel()
        holder.confirm_delivery()
        tags = {}
        for _ in range(10):
            method, _props, body = holder.basic_get(name)
            tags[body.decode()] = method.delivery_tag
        holder.basic_nack(tags["p3"], requeue=True)
        holder.basic_nack(tags["p5"], requeue=True)
        for i in range(1, 6):
            holder.basic_publish("", name, f"q{i}".encode())
        holder.basic_reject(tags["p7"], requeue=True)
        holder.close()
        got = get_all(conn.channel(), name)
        # Quorum: each unsettled get is its own consumer, tagged with its delivery tag as
        # text, and a closed channel's consumers give their messages back in tag-text order.
        returned = _p([1, 10, 2, 4, 6, 8, 9])
        later = _p(range(11, MANY + 1))
        published = [f"q{i}" for i in range(1, 6)]
        expected = {
            "classic": _p(range(1, MANY + 1)) + published,
            "quorum": returned + later + ["p3", "p5"] + published + ["p7"],
        }[queue_type]
        assert [m.body for m in got] == expected
        assert {m.body for m in got if m.redelivered} == set(_p(range(1, 11)))


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_consume_order_across_requeues_and_publishes(broker: BrokerHandle, queue_type: str) -> None:
    """A prefetch-1 consumer over p1..p50 nacks (requeue) the first delivery of p5, p10 and
    p15, acks everything else, and after acking p20 publishes q1..q3 on its own channel."""
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        publish(broker, name, _p(range(1, 51)))
        consumer = make_consumer(conn, prefetch=1)
        consumer.channel.confirm_delivery()
        consumer.start(name)
        handled: list[Got] = []

        def work() -> bool:
            for message in consumer.received[len(handled) :]:
                handled.append(message)
                if message.body in ("p5", "p10", "p15") and not message.redelivered:
                    consumer.channel.basic_nack(message.delivery_tag, requeue=True)
                    continue
                consumer.channel.basic_ack(message.delivery_tag)
                if message.body == "p20":
                    for i in range(1, 4):
                        consumer.channel.basic_publish("", name, f"q{i}".encode())
            return len(handled) == 56

        assert pump([conn], work, timeout=15)
        settle([conn], 0.2)
        again = [(f"p{i}", True) for i in (5, 10, 15)]
        first = [(f"p{i}", False) for i in range(1, 51)]
        published = [(f"q{i}", False) for i in range(1, 4)]
        if queue_type == "classic":
            # each nacked message comes straight back (head of the queue, credit free again)
            expected = []
            for item in first:
                expected.append(item)
                if (item[0], True) in again:
                    expected.append((item[0], True))
            expected += published
        else:
            expected = first + again + published
        assert [(m.body, m.redelivered) for m in consumer.received] == expected


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_channel_close_returns_consumer_by_consumer(broker: BrokerHandle, queue_type: str) -> None:
    """Consumers "zz" (subscribed first) and "aa" hold two messages each, a basic.get holds
    one more; the channel closes. A quorum queue serves the returns by consumer id (the get's
    tag "5" sorts before "aa" and "zz"), a classic queue in the original order."""
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        publish(broker, name, _p(range(1, 8)))
        consumer = make_consumer(conn, prefetch=2)
        consumer.start(name, consumer_tag="zz")
        assert pump([conn], lambda: len(consumer.received) == 2)
        consumer.start(name, consumer_tag="aa")
        assert pump([conn], lambda: len(consumer.received) == 4)
        method, _props, body = consumer.channel.basic_get(name)
        assert (method.delivery_tag, body) == (5, b"p5")
        consumer.channel.close()
        got = [m.body for m in get_all(conn.channel(), name)]
        expected = {
            "classic": _p(range(1, 8)),
            "quorum": _p([5, 3, 4, 1, 2, 6, 7]),
        }[queue_type]
        assert got == expected
