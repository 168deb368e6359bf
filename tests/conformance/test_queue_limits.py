"""Queue arguments with behaviour: message TTL (per message and per queue), length limits,
queue expiry, dead-lettering, priority queues and single active consumer.

The embedded broker accepts these arguments but does not act on them yet: each test is a strict
xfail on the embedded side (see the `embedded_gap` marker in conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pika
import pika.exceptions
import pytest

from tests.conformance.conftest import EMBEDDED_GAP
from tests.conformance.helpers import (
    QUEUE_TYPES,
    BrokerHandle,
    await_management,
    bodies,
    connection,
    counts,
    delete_queue,
    get_all,
    make_consumer,
    pump,
    unique,
)

#: How long an expiry may take to show (RabbitMQ 3.10.8 took 0.1-0.55 s past the TTL here).
EXPIRY_DEADLINE = 1.5

pytestmark = pytest.mark.embedded_gap(EMBEDDED_GAP)


@contextmanager
def _queue(broker: BrokerHandle, queue_type: str, **arguments: Any) -> Iterator[str]:
    name = unique("lim")
    with connection(broker) as conn:
        conn.channel().queue_declare(
            name, durable=True, arguments={"x-queue-type": queue_type, **arguments}
        )
    try:
        yield name
    finally:
        delete_queue(broker, name)


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_per_message_expiration(broker: BrokerHandle, queue_type: str) -> None:
    """m1 and m3 carry expiration 100 ms, m2 none. Expired messages are dropped at the head
    only: m1 goes, m3 waits behind m2 (2 ready) and is dropped once m2 has been taken."""
    with _queue(broker, queue_type) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish("", name, b"m1", pika.BasicProperties(expiration="100"))
        channel.basic_publish("", name, b"m2")
        channel.basic_publish("", name, b"m3", pika.BasicProperties(expiration="100"))
        assert counts(broker, name, (2, 0), timeout=EXPIRY_DEADLINE) == (2, 0)
        # m3 was published right after m1, so it is past its deadline too by now.
        got = get_all(channel, name)
        assert [(m.body, m.message_count) for m in got] == [("m2", 0)]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_queue_message_ttl(broker: BrokerHandle, queue_type: str) -> None:
    """x-message-ttl 100: queued messages go; a consumer that is waiting still gets new ones."""
    with _queue(broker, queue_type, **{"x-message-ttl": 100}) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        for body in (b"t1", b"t2", b"t3"):
            channel.basic_publish("", name, body)
        assert counts(broker, name, (0, 0), timeout=EXPIRY_DEADLINE) == (0, 0)
        consumer = make_consumer(conn).start(name, auto_ack=True)
        channel.basic_publish("", name, b"live")
        assert pump([conn], lambda: len(consumer.received) == 1)
        assert consumer.bodies == ["live"]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_max_length_drops_from_the_head(broker: BrokerHandle, queue_type: str) -> None:
    """x-max-length 2 (overflow drop-head): the oldest ready messages are dropped; unacked
    messages do not count against the limit."""
    with _queue(broker, queue_type, **{"x-max-length": 2}) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish("", name, b"m0")
        holder = make_consumer(conn, prefetch=1).start(name)
        assert pump([conn], lambda: len(holder.received) == 1)
        for i in range(1, 6):
            channel.basic_publish("", name, f"m{i}".encode())
        assert bodies(get_all(channel, name)) == ["m4", "m5"]
        assert holder.bodies == ["m0"]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_max_length_bytes(broker: BrokerHandle, queue_type: str) -> None:
    """x-max-length-bytes 4 with 2-byte bodies keeps the newest two."""
    with (
        _queue(broker, queue_type, **{"x-max-length-bytes": 4}) as name,
        connection(broker) as conn,
    ):
        channel = conn.channel()
        channel.confirm_delivery()
        for i in range(5):
            channel.basic_publish("", name, f"m{i}".encode())
        assert bodies(get_all(channel, name)) == ["m3", "m4"]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_overflow_reject_publish(broker: BrokerHandle, queue_type: str) -> None:
    """x-overflow reject-publish: publishes over the limit are nacked (a quorum queue lets one
    more in: it rejects once it is already over the limit)."""
    arguments = {"x-max-length": 2, "x-overflow": "reject-publish"}
    with _queue(broker, queue_type, **arguments) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        outcomes = []
        for i in range(5):
            try:
                channel.basic_publish("", name, f"m{i}".encode())
                outcomes.append("ack")
            except pika.exceptions.NackError:
                outcomes.append("nack")
        expected = {
            "classic": (["ack", "ack", "nack", "nack", "nack"], ["m0", "m1"]),
            "quorum": (["ack", "ack", "ack", "nack", "nack"], ["m0", "m1", "m2"]),
        }[queue_type]
        assert (outcomes, bodies(get_all(channel, name))) == expected


def _gone(broker: BrokerHandle, name: str) -> Any:
    return await_management(
        broker, f"/api/queues/%2F/{name}", lambda d: d["name"], ("HTTP", 404), EXPIRY_DEADLINE
    )


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_queue_expires_when_unused(broker: BrokerHandle, queue_type: str) -> None:
    """x-expires 300: a queue with no consumers and no use is deleted (watched through the
    management API, which does not count as use)."""
    name = unique("exp")
    with connection(broker) as conn:
        conn.channel().queue_declare(
            name, durable=True, arguments={"x-queue-type": queue_type, "x-expires": 300}
        )
    try:
        assert _gone(broker, name) == ("HTTP", 404)
    finally:
        delete_queue(broker, name)


@pytest.mark.parametrize(
    ("queue_type", "renews"), [("classic", True), ("quorum", False)], ids=QUEUE_TYPES
)
def test_passive_declare_and_expiry(broker: BrokerHandle, queue_type: str, renews: bool) -> None:
    """A passive queue.declare renews a classic queue's x-expires lease (it survives a second
    of them at 100 ms intervals with x-expires 400) but not a quorum queue's."""
    name = unique("exp")
    with connection(broker) as conn:
        channel = conn.channel()
        channel.queue_declare(
            name, durable=True, arguments={"x-queue-type": queue_type, "x-expires": 400}
        )
        survived = True
        try:
            for _ in range(10):
                conn.process_data_events(time_limit=0.1)
                channel.queue_declare(name, passive=True)
        except pika.exceptions.ChannelClosedByBroker as closed:
            assert closed.reply_code == 404
            survived = False
    try:
        assert survived is renews
        assert _gone(broker, name) == ("HTTP", 404)
    finally:
        delete_queue(broker, name)


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_dead_lettering(broker: BrokerHandle, queue_type: str) -> None:
    """Rejected (requeue=false) and expired messages go to x-dead-letter-exchange with
    x-dead-letter-routing-key, carrying x-death and x-first-death-* headers; an expired one has
    its expiration moved to original-expiration."""
    with (
        _queue(broker, "classic") as dlq,
        connection(broker) as conn,
    ):
        arguments = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}
        with _queue(broker, queue_type, **arguments) as name:
            channel = conn.channel()
            channel.confirm_delivery()
            channel.basic_publish("", name, b"r1", pika.BasicProperties(headers={"app": 1}))
            channel.basic_publish("", name, b"e1", pika.BasicProperties(expiration="50"))
            method, _props, _body = channel.basic_get(name)
            channel.basic_reject(method.delivery_tag, requeue=False)
            assert counts(broker, dlq, (2, 0), timeout=EXPIRY_DEADLINE) == (2, 0)
            dead = []
            for _ in range(2):
                method, props, body = channel.basic_get(dlq, auto_ack=True)
                headers = dict(props.headers)
                deaths = [dict(death) for death in headers.pop("x-death")]
                for death in deaths:
                    assert type(death.pop("time")).__name__ == "datetime"
                dead.append(
                    (body, method.exchange, method.routing_key, props.expiration, headers, deaths)
                )
            first_death = {
                "x-first-death-exchange": "",
                "x-first-death-queue": name,
            }
            death = {"count": 1, "queue": name, "exchange": "", "routing-keys": [name]}
            assert dead == [
                (
                    b"r1",
                    "",
                    dlq,
                    None,
                    {"app": 1, **first_death, "x-first-death-reason": "rejected"},
                    [{**death, "reason": "rejected"}],
                ),
                (
                    b"e1",
                    "",
                    dlq,
                    None,
                    {**first_death, "x-first-death-reason": "expired"},
                    [{**death, "reason": "expired", "original-expiration": "50"}],
                ),
            ]


def test_priority_queue(broker: BrokerHandle) -> None:
    """x-max-priority 5: higher priorities first, FIFO within one; a priority above the maximum
    counts as the maximum; no priority counts as 0."""
    with _queue(broker, "classic", **{"x-max-priority": 5}) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        for body, priority in [("a0", None), ("b3", 3), ("c9", 9), ("d1", 1), ("e3", 3), ("f5", 5)]:
            channel.basic_publish("", name, body.encode(), pika.BasicProperties(priority=priority))
        assert bodies(get_all(channel, name)) == ["c9", "f5", "b3", "e3", "d1", "a0"]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_single_active_consumer(broker: BrokerHandle, queue_type: str) -> None:
    """x-single-active-consumer: only the first consumer gets messages (the other waits, even
    with credit); when it goes, the waiting one takes over everything, its unacked included.
    declare-ok counts both consumers on a classic queue, the active one on a quorum queue."""
    arguments = {"x-single-active-consumer": True}
    with (
        _queue(broker, queue_type, **arguments) as name,
        connection(broker) as conn_first,
        connection(broker) as conn_second,
    ):
        first = make_consumer(conn_first, prefetch=1).start(name)
        second = make_consumer(conn_second).start(name)
        with connection(broker) as publisher:
            channel = publisher.channel()
            channel.confirm_delivery()
            for i in range(4):
                channel.basic_publish("", name, f"s{i}".encode())
        assert pump([conn_first, conn_second], lambda: len(first.received) == 1)
        consumers = {"classic": 2, "quorum": 1}[queue_type]
        assert counts(broker, name, (3, consumers), timeout=1.0) == (3, consumers)
        assert (first.bodies, second.bodies) == (["s0"], [])
        conn_first.close()
        assert pump([conn_second], lambda: len(second.received) == 4)
        assert sorted((m.body, m.redelivered) for m in second.received) == [
            ("s0", True),
            ("s1", False),
            ("s2", False),
            ("s3", False),
        ]
