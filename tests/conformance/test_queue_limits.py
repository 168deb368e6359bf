"""Queue arguments with behaviour: message TTL (per message and per queue), length limits,
queue expiry, dead-lettering, priority queues and single active consumer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pika
import pika.exceptions
import pytest
from pamqp import body, commands, frame, header

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
    raw_ready,
    unique,
)

#: How long an expiry may take to show (RabbitMQ 3.10.8 took 0.1-0.55 s past the TTL here).
EXPIRY_DEADLINE = 1.5


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


# -- more of the same features: edges measured on RabbitMQ 3.10.8 ------------------------------


def _deaths(properties: pika.BasicProperties) -> list[dict[str, Any]]:
    """The x-death tables without their `time` (a timestamp, checked for its type only)."""
    deaths = []
    for death in properties.headers["x-death"]:
        death = dict(death)
        assert type(death.pop("time")).__name__ == "datetime"
        deaths.append(death)
    return deaths


def test_reject_publish_nacks_each_refused_message(broker: BrokerHandle) -> None:
    """Every publish a full reject-publish queue refuses is nacked (requeue=true, the field's
    default), the accepted one acked. Whether RabbitMQ folds several nacks into one with
    multiple=true depends on timing, so the outcome is compared per publish."""
    name = unique("rp")
    client = raw_ready(broker)
    try:
        arguments = {"x-max-length": 1, "x-overflow": "reject-publish"}
        client.call(
            commands.Queue.Declare(queue=name, auto_delete=True, arguments=arguments),
            1,
            commands.Queue.DeclareOk,
        )
        client.call(commands.Confirm.Select(), 1, commands.Confirm.SelectOk)
        for _ in range(4):
            client.send(
                frame.marshal(commands.Basic.Publish(routing_key=name), 1)
                + frame.marshal(header.ContentHeader(0, 1, commands.Basic.Properties()), 1)
                + frame.marshal(body.ContentBody(b"x"), 1)
            )
        outcome: dict[int, tuple[str, bool | None]] = {}
        while len(outcome) < 4:
            method = client.read_frame().method
            if isinstance(method, commands.Basic.Ack | commands.Basic.Nack):
                kind = "ack" if isinstance(method, commands.Basic.Ack) else "nack"
                requeue = getattr(method, "requeue", None)
                tags = range(1, method.delivery_tag + 1) if method.multiple else []
                for tag in [*tags, method.delivery_tag]:
                    outcome.setdefault(tag, (kind, requeue))
        assert outcome == {
            1: ("ack", None),
            2: ("nack", True),
            3: ("nack", True),
            4: ("nack", True),
        }
        client.close_connection()
    finally:
        client.close()


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_max_length_dead_letters_the_dropped_head(broker: BrokerHandle, queue_type: str) -> None:
    """drop-head with a dead-letter exchange: the dropped messages are dead-lettered with
    reason maxlen, oldest first."""
    with _queue(broker, "classic") as dlq, connection(broker) as conn:
        arguments = {
            "x-max-length": 1,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dlq,
        }
        with _queue(broker, queue_type, **arguments) as name:
            channel = conn.channel()
            channel.confirm_delivery()
            for body_text in ("a", "b", "c"):
                channel.basic_publish("", name, body_text.encode())
            assert counts(broker, dlq, (2, 0)) == (2, 0)
            dead = []
            for _ in range(2):
                method, properties, body_bytes = channel.basic_get(dlq, auto_ack=True)
                reasons = [death["reason"] for death in _deaths(properties)]
                dead.append((body_bytes, reasons, properties.headers["x-first-death-reason"]))
            assert dead == [(b"a", ["maxlen"], "maxlen"), (b"b", ["maxlen"], "maxlen")]
            assert bodies(get_all(channel, name)) == ["c"]


def test_reject_publish_dlx_dead_letters_the_refused_message(broker: BrokerHandle) -> None:
    """Classic x-overflow reject-publish-dlx: the refused message is nacked and also
    dead-lettered (reason maxlen); the queue keeps what it had."""
    with _queue(broker, "classic") as dlq, connection(broker) as conn:
        arguments = {
            "x-max-length": 1,
            "x-overflow": "reject-publish-dlx",
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dlq,
        }
        with _queue(broker, "classic", **arguments) as name:
            channel = conn.channel()
            channel.confirm_delivery()
            channel.basic_publish("", name, b"kept")
            with pytest.raises(pika.exceptions.NackError):
                channel.basic_publish("", name, b"refused")
            assert counts(broker, dlq, (1, 0)) == (1, 0)
            method, properties, body_bytes = channel.basic_get(dlq, auto_ack=True)
            assert (body_bytes, [d["reason"] for d in _deaths(properties)]) == (
                b"refused",
                ["maxlen"],
            )
            assert bodies(get_all(channel, name)) == ["kept"]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_x_death_counts_each_queue_and_reason(broker: BrokerHandle, queue_type: str) -> None:
    """A message that dies again and again: one x-death table per (queue, reason), the one of
    the latest death first with its count raised (its other fields stay from its first time),
    re-encoded sorted; x-first-death-* keep the first death."""
    with connection(broker) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        first, second = unique("d1"), unique("d2")
        channel.queue_declare(
            second,
            durable=True,
            arguments={
                "x-queue-type": queue_type,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": first,
            },
        )
        channel.queue_declare(
            first,
            durable=True,
            arguments={
                "x-queue-type": queue_type,
                "x-message-ttl": 50,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": second,
            },
        )
        try:
            channel.basic_publish(
                "", first, b"m", pika.BasicProperties(headers={"zz": 1, "aa": 2}, expiration="9999")
            )
            history = []
            for _ in range(3):
                assert counts(broker, second, (1, 0), timeout=EXPIRY_DEADLINE) == (1, 0)
                method, properties, _body = channel.basic_get(second)
                history.append(
                    (
                        [(d["queue"], d["reason"], d["count"]) for d in _deaths(properties)],
                        # (a quorum queue's basic.get adds x-delivery-count)
                        sorted(set(properties.headers) - {"x-delivery-count"}),
                        properties.expiration,
                    )
                )
                channel.basic_reject(method.delivery_tag, requeue=False)
            keys = ["aa", "x-death", "x-first-death-exchange", "x-first-death-queue"]
            keys += ["x-first-death-reason", "zz"]
            assert history == [
                ([(first, "expired", 1)], keys, None),
                ([(first, "expired", 2), (second, "rejected", 1)], keys, None),
                ([(first, "expired", 3), (second, "rejected", 2)], keys, None),
            ]
        finally:
            channel.queue_delete(first)
            channel.queue_delete(second)


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_dead_letter_cycles(broker: BrokerHandle, queue_type: str) -> None:
    """A queue that dead-letters to itself: an expired message would cycle and is dropped; a
    rejected one comes back (a consumer's decision is no cycle), with its x-death."""
    name = unique("cyc")
    arguments = {
        "x-queue-type": queue_type,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": name,
    }
    with connection(broker) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.queue_declare(name, durable=True, arguments=arguments)
        try:
            channel.basic_publish("", name, b"rejected")
            method, _props, _body = channel.basic_get(name)
            channel.basic_reject(method.delivery_tag, requeue=False)
            assert counts(broker, name, (1, 0)) == (1, 0)
            method, properties, body_bytes = channel.basic_get(name, auto_ack=True)
            assert (body_bytes, [(d["reason"], d["count"]) for d in _deaths(properties)]) == (
                b"rejected",
                [("rejected", 1)],
            )
            channel.basic_publish("", name, b"expires", pika.BasicProperties(expiration="20"))
            assert counts(broker, name, (0, 0), timeout=EXPIRY_DEADLINE) == (0, 0)
            conn.process_data_events(time_limit=0.3)
            assert counts(broker, name) == (0, 0)
        finally:
            channel.queue_delete(name)


def test_dead_lettering_without_a_routing_key_uses_the_cc_keys(broker: BrokerHandle) -> None:
    """Without x-dead-letter-routing-key the copy is routed with the message's own keys, CC
    included, and x-death's routing-keys lists them."""
    dlx = unique("dlx")
    with (
        _queue(broker, "classic") as by_key,
        _queue(broker, "classic") as by_cc,
        connection(broker) as conn,
    ):
        channel = conn.channel()
        channel.exchange_declare(dlx, "direct")
        source = unique("src")
        channel.queue_declare(source, arguments={"x-dead-letter-exchange": dlx})
        try:
            channel.queue_bind(by_key, dlx, routing_key=source)
            channel.queue_bind(by_cc, dlx, routing_key="cc-key")
            channel.confirm_delivery()
            properties = pika.BasicProperties(headers={"CC": ["cc-key"]})
            channel.basic_publish("", source, b"m", properties)
            method, _props, _body = channel.basic_get(source)
            channel.basic_reject(method.delivery_tag, requeue=False)
            got = []
            for queue in (by_key, by_cc):
                assert counts(broker, queue, (1, 0)) == (1, 0)
                method, properties, _body = channel.basic_get(queue, auto_ack=True)
                death = _deaths(properties)[0]
                got.append((method.exchange, method.routing_key, death["routing-keys"]))
            assert got == [(dlx, source, [source, "cc-key"])] * 2
        finally:
            channel.queue_delete(source)
            channel.exchange_delete(dlx)


@pytest.mark.parametrize(
    ("arguments", "key", "text"),
    [
        ({"x-overflow": "bogus"}, "x-overflow", "invalid_overflow"),
        ({"x-overflow": 1}, "x-overflow", "{unacceptable_type,signedint}"),
        (
            {"x-dead-letter-routing-key": "k"},
            "x-dead-letter-routing-key",
            "routing_key_but_no_dlx_defined",
        ),
        (
            {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": 5},
            "x-dead-letter-routing-key",
            "{unacceptable_type,signedint}",
        ),
        (
            {"x-single-active-consumer": 1},
            "x-single-active-consumer",
            "{unacceptable_type,signedint}",
        ),
        (
            {"x-single-active-consumer": "true"},
            "x-single-active-consumer",
            "{unacceptable_type,longstr}",
        ),
        ({"x-overflow": "bogus", "x-max-length": -1}, "x-max-length", "{value_negative,-1}"),
    ],
    ids=[
        "overflow-value",
        "overflow-type",
        "dlx-key-without-dlx",
        "dlx-key-type",
        "sac-int",
        "sac-string",
        "checked-in-order",
    ],
)
@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_invalid_feature_arguments(
    broker: BrokerHandle, queue_type: str, arguments: dict[str, Any], key: str, text: str
) -> None:
    """Argument checks (rabbit_amqqueue:declare_args, in its order) of the arguments above."""
    name = unique("arg")
    with connection(broker) as conn:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            conn.channel().queue_declare(
                name, durable=True, arguments={"x-queue-type": queue_type, **arguments}
            )
        assert (excinfo.value.reply_code, excinfo.value.reply_text) == (
            406,
            f"PRECONDITION_FAILED - invalid arg '{key}' for queue '{name}' in vhost '/': {text}",
        )


def test_dead_letter_exchange_of_the_wrong_type(broker: BrokerHandle) -> None:
    name = unique("arg")
    with connection(broker) as conn:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            conn.channel().queue_declare(name, arguments={"x-dead-letter-exchange": 1})
        assert (excinfo.value.reply_code, excinfo.value.reply_text) == (
            406,
            "PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in "
            f"queue '{name}' in vhost '/'",
        )


def test_single_active_consumer_refusals(broker: BrokerHandle) -> None:
    """An exclusive consumer on a classic single-active-consumer queue is refused (403), on a
    quorum one it is not; a basic.get on a quorum one is refused with 405."""
    with (
        _queue(broker, "classic", **{"x-single-active-consumer": True}) as classic,
        _queue(broker, "quorum", **{"x-single-active-consumer": True}) as quorum,
        connection(broker) as conn,
    ):
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            conn.channel().basic_consume(classic, lambda *_: None, exclusive=True)
        assert (excinfo.value.reply_code, excinfo.value.reply_text) == (
            403,
            f"ACCESS_REFUSED - queue '{classic}' in vhost '/' in exclusive use",
        )
        conn.channel().basic_consume(quorum, lambda *_: None, exclusive=True)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            conn.channel().basic_get(quorum)
        assert (excinfo.value.reply_code, excinfo.value.reply_text) == (
            405,
            f"RESOURCE_LOCKED - cannot obtain access to locked queue '{quorum}' in vhost '/'. "
            "basic.get operations are not supported by quorum queues with single active "
            "consumer",
        )


def test_priority_queue_requeue_keeps_priority_order(broker: BrokerHandle) -> None:
    """Messages nacked back into a priority queue return to their place in their priority."""
    with _queue(broker, "classic", **{"x-max-priority": 9}) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        for body_text, priority in [("low1", 1), ("high", 8), ("low2", 1), ("none", None)]:
            properties = pika.BasicProperties(priority=priority)
            channel.basic_publish("", name, body_text.encode(), properties)
        taken = [channel.basic_get(name)[0] for _ in range(3)]
        channel.basic_nack(taken[-1].delivery_tag, multiple=True, requeue=True)
        assert [(m.body, m.redelivered) for m in get_all(channel, name)] == [
            ("high", True),
            ("low1", True),
            ("low2", True),
            ("none", False),
        ]


@pytest.mark.parametrize(
    ("queue_type", "left"),
    [("classic", ["m2", "m3"]), ("quorum", ["m3", "m1"])],
    ids=QUEUE_TYPES,
)
def test_max_length_after_a_requeue(broker: BrokerHandle, queue_type: str, left: list[str]) -> None:
    """A requeued message counts again: classic puts it back at the head, where drop-head
    takes it; quorum puts a nacked message at the back and drops the head instead."""
    with _queue(broker, queue_type, **{"x-max-length": 2}) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish("", name, b"m1")
        method, _props, _body = channel.basic_get(name)
        channel.basic_publish("", name, b"m2")
        channel.basic_publish("", name, b"m3")
        channel.basic_nack(method.delivery_tag, requeue=True)
        assert bodies(get_all(channel, name)) == left


def test_message_ttl_zero(broker: BrokerHandle) -> None:
    """Classic x-message-ttl 0 without a dead-letter exchange: a message no consumer takes at
    once is discarded; a waiting consumer still gets it."""
    with _queue(broker, "classic", **{"x-message-ttl": 0}) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish("", name, b"nobody")
        assert counts(broker, name) == (0, 0)
        consumer = make_consumer(conn).start(name, auto_ack=True)
        channel.basic_publish("", name, b"waiting")
        assert pump([conn], lambda: consumer.bodies == ["waiting"])


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_expired_while_unacked(broker: BrokerHandle, queue_type: str) -> None:
    """A message whose TTL runs out while it is unacked is dropped when it comes back."""
    with _queue(broker, queue_type) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish("", name, b"short", pika.BasicProperties(expiration="100"))
        channel.basic_publish("", name, b"long")
        method, _props, body_bytes = channel.basic_get(name)
        assert body_bytes == b"short"
        conn.process_data_events(time_limit=0.3)
        channel.basic_nack(method.delivery_tag, requeue=True)
        assert bodies(get_all(channel, name)) == ["long"]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_single_active_consumer_in_the_management_api(
    broker: BrokerHandle, queue_type: str
) -> None:
    """The management API counts the waiting consumer too, quorum queues included (their
    declare-ok does not)."""
    arguments = {"x-single-active-consumer": True}
    with (
        _queue(broker, queue_type, **arguments) as name,
        connection(broker) as first,
        connection(broker) as second,
    ):
        make_consumer(first).start(name)
        make_consumer(second).start(name)
        path = f"/api/queues/%2F/{name}"
        assert await_management(broker, path, lambda d: d.get("consumers"), 2) == 2
