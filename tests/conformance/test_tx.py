"""tx.select / tx.commit / tx.rollback: what is visible before a commit, what a rollback undoes.

RabbitMQ routes a transactional publish when it arrives and delivers it at commit; acks, nacks
and rejects are checked against the channel's outstanding tags when they arrive and applied at
commit; a rollback drops the publishes and puts the pending acks back as unacked.
"""

from __future__ import annotations

import pika
import pika.exceptions
import pytest
from pamqp import commands

from tests.conformance.helpers import (
    QUEUE_TYPES,
    BrokerHandle,
    bodies,
    close_fields,
    connection,
    counts,
    delete_exchange,
    expect_channel_close,
    get_all,
    make_consumer,
    publish,
    pump,
    raw_ready,
    settle,
    temp_queue,
    unique,
)


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_publishes_visible_only_after_commit(broker: BrokerHandle, queue_type: str) -> None:
    with (
        temp_queue(broker, queue_type) as name,
        connection(broker) as conn,
        connection(broker) as observer,
    ):
        tx = conn.channel()
        tx.tx_select()
        for body in (b"t1", b"t2", b"t3"):
            tx.basic_publish("", name, body)
        tx.queue_declare(name, passive=True)  # a round trip: the publishes have arrived
        assert counts(broker, name) == (0, 0)
        assert observer.channel().basic_get(name)[0] is None
        tx.tx_commit()
        assert counts(broker, name, (3, 0)) == (3, 0)
        assert bodies(get_all(observer.channel(), name)) == ["t1", "t2", "t3"]


def test_rollback_discards_publishes(broker: BrokerHandle) -> None:
    with temp_queue(broker) as name, connection(broker) as conn:
        tx = conn.channel()
        tx.tx_select()
        tx.basic_publish("", name, b"dropped-1")
        tx.basic_publish("", name, b"dropped-2")
        tx.tx_rollback()
        tx.basic_publish("", name, b"kept")
        tx.tx_commit()
        tx.tx_rollback()  # nothing pending: a no-op
        assert bodies(get_all(conn.channel(), name)) == ["kept"]


def test_transaction_stays_open_after_commit(broker: BrokerHandle) -> None:
    """After commit the channel is still transactional: the next publish waits for a commit."""
    with temp_queue(broker) as name, connection(broker) as conn:
        tx = conn.channel()
        tx.tx_select()
        tx.tx_select()  # a second select is accepted
        tx.basic_publish("", name, b"first")
        tx.tx_commit()
        tx.basic_publish("", name, b"second")
        tx.queue_declare(name, passive=True)
        assert counts(broker, name) == (1, 0)
        tx.tx_commit()
        assert counts(broker, name, (2, 0)) == (2, 0)


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_acks_apply_at_commit_and_rollback_restores_them(
    broker: BrokerHandle, queue_type: str
) -> None:
    """An ack rolled back leaves the message unacked (it can be acked again); an ack never
    committed is undone by closing the channel (the message is requeued)."""
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        publish(broker, name, ["m1", "m2", "m3"])
        tx = conn.channel()
        tx.tx_select()
        first = tx.basic_get(name)[0]
        second = tx.basic_get(name)[0]
        tx.basic_ack(first.delivery_tag)
        tx.tx_rollback()
        # Quorum queues count each unsettled basic.get as a consumer (see FINDINGS.md).
        unsettled = (1, 0 if queue_type == "classic" else 2)
        assert counts(broker, name, unsettled) == unsettled
        tx.basic_ack(first.delivery_tag)  # still outstanding after the rollback
        tx.basic_ack(second.delivery_tag)
        tx.tx_commit()
        third = tx.basic_get(name)[0]
        tx.basic_ack(third.delivery_tag)
        tx.close()  # never committed: m3 goes back
        got = get_all(conn.channel(), name)
        assert [(m.body, m.redelivered) for m in got] == [("m3", True)]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_nack_requeue_applies_at_commit(broker: BrokerHandle, queue_type: str) -> None:
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        publish(broker, name, ["n1", "n2"])
        tx = conn.channel()
        tx.tx_select()
        held = tx.basic_get(name)[0]
        tx.basic_nack(held.delivery_tag, requeue=True)
        tx.queue_declare(name, passive=True)
        assert counts(broker, name)[0] == 1  # n1 still unacked
        tx.tx_commit()
        expected = ["n1", "n2"] if queue_type == "classic" else ["n2", "n1"]
        assert bodies(get_all(conn.channel(), name)) == expected


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_consumer_credit_returns_at_commit(broker: BrokerHandle, queue_type: str) -> None:
    """prefetch 1 on a transactional channel: the ack frees the consumer only at commit."""
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        publish(broker, name, ["c1", "c2"])
        consumer = make_consumer(conn, prefetch=1)
        consumer.channel.tx_select()
        consumer.start(name)
        assert pump([conn], lambda: len(consumer.received) == 1)
        consumer.channel.basic_ack(consumer.received[0].delivery_tag)
        settle([conn], 0.3)
        assert consumer.bodies == ["c1"]
        consumer.channel.tx_commit()
        assert pump([conn], lambda: len(consumer.received) == 2)
        assert consumer.bodies == ["c1", "c2"]


def test_mandatory_return_comes_at_commit(broker: BrokerHandle) -> None:
    with connection(broker) as conn:
        tx = conn.channel()
        returned: list[tuple[int, str, bytes]] = []
        tx.add_on_return_callback(
            lambda _ch, method, _props, body: returned.append(
                (method.reply_code, method.routing_key, body)
            )
        )
        tx.tx_select()
        tx.basic_publish("", unique("nowhere"), b"lost", mandatory=True)
        tx.queue_declare("", exclusive=True)  # a round trip
        conn.process_data_events(time_limit=0)
        assert returned == []
        tx.tx_commit()
        conn.process_data_events(time_limit=0)
        assert [(code, body) for code, _key, body in returned] == [(312, b"lost")]


def test_routing_happens_at_publish_time(broker: BrokerHandle) -> None:
    """A transactional publish is routed when it arrives: unbinding before the commit does not
    stop it, binding before the commit does not add a destination."""
    exchange = unique("xtx")
    with (
        temp_queue(broker) as early,
        temp_queue(broker) as late,
        connection(broker) as conn,
    ):
        channel = conn.channel()
        channel.exchange_declare(exchange, "fanout")
        try:
            channel.queue_bind(early, exchange)
            tx = conn.channel()
            tx.tx_select()
            tx.basic_publish(exchange, "", b"routed-early")
            tx.queue_declare(early, passive=True)  # the publish has arrived
            channel.queue_unbind(early, exchange)
            channel.queue_bind(late, exchange)
            tx.tx_commit()
            assert bodies(get_all(channel, early)) == ["routed-early"]
            assert bodies(get_all(channel, late)) == []
        finally:
            delete_exchange(broker, exchange)


def test_double_ack_in_tx_fails_at_the_ack(broker: BrokerHandle) -> None:
    """Tags are checked when the ack arrives, not at commit: the second ack of a tag closes the
    channel with 406 naming basic.ack (60/80)."""
    with temp_queue(broker) as name:
        publish(broker, name, ["d1"])
        client = raw_ready(broker)
        try:
            client.call(commands.Tx.Select(), 1, commands.Tx.SelectOk)
            client.send_frame(commands.Basic.Get(queue=name), 1)
            client.read_until(lambda f: f.is_method(commands.Basic.GetOk))
            client.send_frame(commands.Basic.Ack(delivery_tag=1), 1)
            client.send_frame(commands.Basic.Ack(delivery_tag=1), 1)
            close = expect_channel_close(client, 1)
            assert close_fields(close) == (
                406,
                "PRECONDITION_FAILED - unknown delivery tag 1",
                60,
                80,
            )
        finally:
            client.close()
        with connection(broker) as conn:
            got = get_all(conn.channel(), name)
        assert [(m.body, m.redelivered) for m in got] == [("d1", True)]


def test_ack_multiple_then_single_in_tx(broker: BrokerHandle) -> None:
    """ack(2, multiple) takes tags 1 and 2 out at once; a later ack of tag 1 is unknown."""
    with temp_queue(broker) as name, connection(broker) as conn:
        publish(broker, name, ["a", "b", "c"])
        tx = conn.channel()
        tx.tx_select()
        for _ in range(3):
            tx.basic_get(name)
        tx.basic_ack(2, multiple=True)
        tx.basic_ack(1)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            tx.tx_commit()
        assert (excinfo.value.reply_code, excinfo.value.reply_text) == (
            406,
            "PRECONDITION_FAILED - unknown delivery tag 1",
        )
        assert [m.body for m in get_all(conn.channel(), name)] == ["a", "b", "c"]


def test_basic_get_is_not_transactional(broker: BrokerHandle) -> None:
    """A get on a transactional channel takes the message at once (only its ack waits)."""
    with temp_queue(broker) as name, connection(broker) as conn:
        publish(broker, name, ["g1", "g2"])
        tx = conn.channel()
        tx.tx_select()
        method, _props, body = tx.basic_get(name, auto_ack=True)
        assert (body, method.message_count) == (b"g1", 1)
        tx.tx_rollback()
        assert counts(broker, name) == (1, 0)
        assert bodies(get_all(conn.channel(), name)) == ["g2"]


def test_publish_in_tx_with_properties(broker: BrokerHandle) -> None:
    with temp_queue(broker) as name, connection(broker) as conn:
        tx = conn.channel()
        tx.tx_select()
        properties = pika.BasicProperties(content_type="text/plain", headers={"k": "v"})
        tx.basic_publish("", name, b"with-props", properties)
        tx.tx_commit()
        _method, props, body = conn.channel().basic_get(name, auto_ack=True)
        assert (body, props.content_type, props.headers) == (
            b"with-props",
            "text/plain",
            {"k": "v"},
        )
