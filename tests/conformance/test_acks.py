"""Acknowledgements: tags, multiple, nack/reject, bad tags, cancel with unacked messages."""

from __future__ import annotations

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
    expect_channel_close,
    get_all,
    make_consumer,
    publish,
    publish_confirmed,
    pump,
    raw_ready,
    settle,
    temp_queue,
    unique,
)


def _closed(excinfo: pytest.ExceptionInfo) -> tuple[int, str]:
    return excinfo.value.reply_code, excinfo.value.reply_text


def test_double_ack_and_ack_on_wrong_channel(broker: BrokerHandle) -> None:
    """Scenario 8: 406 unknown delivery tag 1; other channels survive."""
    with temp_queue(broker) as name, connection(broker) as conn:
        channel = conn.channel()
        publish_confirmed(channel, name, ["a", "b"])
        method, _props, _body = channel.basic_get(name)
        channel.basic_ack(method.delivery_tag)
        channel.basic_ack(method.delivery_tag)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.basic_qos(prefetch_count=1)  # a round trip surfaces the close
        assert _closed(excinfo) == (406, "PRECONDITION_FAILED - unknown delivery tag 1")

        owner = conn.channel()
        method, _props, _body = owner.basic_get(name)
        assert method.delivery_tag == 1
        other = conn.channel()
        other.basic_ack(1)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            other.basic_qos(prefetch_count=1)
        assert _closed(excinfo) == (406, "PRECONDITION_FAILED - unknown delivery tag 1")
        assert owner.is_open
        owner.basic_ack(1)
        assert counts(broker, name, (0, 0)) == (0, 0)


def test_ack_lands_on_the_channels_own_tag(broker: BrokerHandle) -> None:
    """An ack on another channel that has the same tag outstanding acks *that* message."""
    with temp_queue(broker) as name, connection(broker) as conn:
        first, second = conn.channel(), conn.channel()
        publish_confirmed(first, name, ["a", "b"])
        assert first.basic_get(name)[2] == b"a"
        assert second.basic_get(name)[2] == b"b"
        second.basic_ack(1)
        first.close()  # "a" goes back
        assert bodies(get_all(second, name)) == ["a"]


BAD_TAG_CASES = {
    "ack-0": (commands.Basic.Ack(delivery_tag=0), "0", (60, 80)),
    "ack-5-multiple": (commands.Basic.Ack(delivery_tag=5, multiple=True), "5", (60, 80)),
    "nack-7": (commands.Basic.Nack(delivery_tag=7, requeue=True), "7", (60, 120)),
    "nack-0": (commands.Basic.Nack(delivery_tag=0), "0", (60, 120)),
    "reject-9": (commands.Basic.Reject(delivery_tag=9, requeue=True), "9", (60, 90)),
    "reject-0": (commands.Basic.Reject(delivery_tag=0), "0", (60, 90)),
}


@pytest.mark.parametrize("case", list(BAD_TAG_CASES))
def test_unknown_delivery_tag(broker: BrokerHandle, case: str) -> None:
    method, tag, ids = BAD_TAG_CASES[case]
    client = raw_ready(broker, channels=1)
    try:
        client.send_frame(method, 1)
        close = expect_channel_close(client, 1)
        assert close_fields(close) == (
            406,
            f"PRECONDITION_FAILED - unknown delivery tag {tag}",
            *ids,
        )
        client.close_connection()
    finally:
        client.close()


def test_multiple_with_tag_zero_and_nothing_outstanding(broker: BrokerHandle) -> None:
    client = raw_ready(broker, channels=1)
    try:
        client.send_frame(commands.Basic.Ack(delivery_tag=0, multiple=True), 1)
        client.send_frame(commands.Basic.Nack(delivery_tag=0, multiple=True), 1)
        ok = client.call(commands.Basic.Qos(prefetch_count=1), 1, commands.Basic.QosOk)
        assert ok is not None
        client.close_connection()
    finally:
        client.close()


def test_ack_multiple_tag_zero_settles_all(broker: BrokerHandle) -> None:
    with temp_queue(broker) as name, connection(broker) as conn:
        channel = conn.channel()
        publish_confirmed(channel, name, ["a", "b", "c"])
        for _ in range(3):
            channel.basic_get(name)
        channel.basic_ack(0, multiple=True)
        channel.close()
        assert counts(broker, name, (0, 0)) == (0, 0)


def test_ack_multiple_unknown_tag_settles_nothing(broker: BrokerHandle) -> None:
    with temp_queue(broker) as name, connection(broker) as conn:
        channel = conn.channel()
        publish_confirmed(channel, name, ["a", "b"])
        channel.basic_get(name)
        channel.basic_get(name)
        channel.basic_ack(99, multiple=True)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.basic_qos(prefetch_count=1)
        assert _closed(excinfo) == (406, "PRECONDITION_FAILED - unknown delivery tag 99")
        assert counts(broker, name, (2, 0)) == (2, 0)


def test_no_ack_deliveries_take_tags_and_cannot_be_acked(broker: BrokerHandle) -> None:
    with temp_queue(broker) as name, connection(broker) as conn:
        channel = conn.channel()
        publish_confirmed(channel, name, ["a", "b", "c"])
        assert channel.basic_get(name, auto_ack=True)[0].delivery_tag == 1
        assert channel.basic_get(name)[0].delivery_tag == 2
        assert channel.basic_get(name, auto_ack=True)[0].delivery_tag == 3
        channel.basic_ack(3)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.basic_qos(prefetch_count=1)
        assert _closed(excinfo) == (406, "PRECONDITION_FAILED - unknown delivery tag 3")
        assert counts(broker, name, (1, 0)) == (1, 0)  # tag 2 came back


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_nack_and_ack_multiple(broker: BrokerHandle, queue_type: str) -> None:
    """Scenario 10."""
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        channel = conn.channel()
        publish_confirmed(channel, name, ["m1"])
        consumer = make_consumer(conn, prefetch=1).start(name)
        assert pump([conn], lambda: len(consumer.received) == 1)
        consumer.channel.basic_nack(consumer.received[0].delivery_tag, requeue=True)
        assert pump([conn], lambda: len(consumer.received) == 2)
        again = consumer.received[1]
        assert (again.body, again.redelivered, again.delivery_tag) == ("m1", True, 2)
        consumer.channel.basic_nack(again.delivery_tag, requeue=False)  # dropped
        settle([conn], 0.2)
        assert len(consumer.received) == 2
        assert counts(broker, name, (0, 1)) == (0, 1)

    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        channel = conn.channel()
        publish_confirmed(channel, name, ["a", "b", "c"])
        tags = [channel.basic_get(name)[0].delivery_tag for _ in range(3)]
        assert tags == [1, 2, 3]
        channel.basic_ack(2, multiple=True)
        channel.basic_ack(2)  # tag 2 is gone: only 3 is outstanding
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.basic_qos(prefetch_count=1)
        assert _closed(excinfo) == (406, "PRECONDITION_FAILED - unknown delivery tag 2")
        assert bodies(get_all(conn.channel(), name)) == ["c"]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_reject_without_requeue_drops(broker: BrokerHandle, queue_type: str) -> None:
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        channel = conn.channel()
        publish_confirmed(channel, name, ["a", "b"])
        channel.basic_reject(channel.basic_get(name)[0].delivery_tag, requeue=False)
        channel.basic_nack(channel.basic_get(name)[0].delivery_tag, requeue=False)
        channel.close()
        assert counts(broker, name, (0, 0)) == (0, 0)


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_nack_multiple_requeues_all(broker: BrokerHandle, queue_type: str) -> None:
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        channel = conn.channel()
        publish_confirmed(channel, name, ["a", "b", "c"])
        for _ in range(3):
            channel.basic_get(name)
        channel.basic_nack(2, multiple=True, requeue=True)
        got = get_all(channel, name)
        assert [(m.body, m.redelivered) for m in got] == [("a", True), ("b", True)]
        channel.basic_nack(0, multiple=True, requeue=True)  # tag 3 ("c")
        assert [(m.body, m.redelivered) for m in get_all(channel, name)] == [("c", True)]


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_cancel_keeps_unacked_until_channel_close(broker: BrokerHandle, queue_type: str) -> None:
    """Scenario 11: after cancel-ok tags stay ackable; the rest is requeued on channel close."""
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        publish(broker, name, ["m1", "m2", "m3", "m4"])
        consumer = make_consumer(conn, prefetch=3).start(name)
        assert pump([conn], lambda: len(consumer.received) == 3)
        consumer.channel.basic_cancel(consumer.tag)
        settle([conn], 0.2)
        assert consumer.bodies == ["m1", "m2", "m3"]
        # Quorum quirk: a cancelled consumer still counts while it holds unacked messages.
        still_counted = {"classic": 0, "quorum": 1}[queue_type]
        assert counts(broker, name, (1, still_counted)) == (1, still_counted)
        consumer.channel.basic_ack(consumer.received[0].delivery_tag)
        consumer.channel.basic_qos(prefetch_count=3)  # round trip: the ack was accepted
        assert counts(broker, name, (1, still_counted)) == (1, still_counted)
        consumer.channel.close()
        assert counts(broker, name, (3, 0)) == (3, 0)
        got = get_all(conn.channel(), name)
        assert [(m.body, m.redelivered) for m in got] == [
            ("m2", True),
            ("m3", True),
            ("m4", False),
        ]


def test_cancel_unknown_tag_is_ok(broker: BrokerHandle) -> None:
    client = raw_ready(broker, channels=1)
    try:
        ok = client.call(commands.Basic.Cancel(consumer_tag="unknown"), 1, commands.Basic.CancelOk)
        assert ok.consumer_tag == "unknown"
        client.close_connection()
    finally:
        client.close()


def test_consumer_tag_reuse_is_a_connection_error(broker: BrokerHandle) -> None:
    client = raw_ready(broker, channels=1)
    try:
        client.call(commands.Queue.Declare(queue="", exclusive=True), 1, commands.Queue.DeclareOk)
        client.call(
            commands.Basic.Consume(queue="", consumer_tag="t1"), 1, commands.Basic.ConsumeOk
        )
        client.send_frame(commands.Basic.Consume(queue="", consumer_tag="t1"), 1)
        frame = client.read_until(lambda f: f.is_method(commands.Connection.Close))
        assert close_fields(frame.method) == (
            530,
            "NOT_ALLOWED - attempt to reuse consumer tag 't1'",
            60,
            20,
        )
    finally:
        client.close()


def test_consume_on_missing_queue(broker: BrokerHandle) -> None:
    missing = unique("missing")
    with connection(broker) as conn:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            conn.channel().basic_consume(missing, lambda *args: None)
        assert _closed(excinfo) == (404, f"NOT_FOUND - no queue '{missing}' in vhost '/'")


def test_exclusive_consumer(broker: BrokerHandle) -> None:
    with temp_queue(broker) as name, connection(broker) as conn, connection(broker) as other:
        conn.channel().basic_consume(name, lambda *a: None, exclusive=True)
        text = f"ACCESS_REFUSED - queue '{name}' in vhost '/' in exclusive use"
        for channel in (conn.channel(), other.channel()):
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
                channel.basic_consume(name, lambda *a: None)
            assert _closed(excinfo) == (403, text)
        channel = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.basic_consume(name, lambda *a: None, exclusive=True)
        assert _closed(excinfo) == (403, text)


def test_exclusive_consume_when_others_consume(broker: BrokerHandle) -> None:
    with temp_queue(broker) as name, connection(broker) as conn:
        conn.channel().basic_consume(name, lambda *a: None)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            conn.channel().basic_consume(name, lambda *a: None, exclusive=True)
        assert _closed(excinfo) == (
            403,
            f"ACCESS_REFUSED - queue '{name}' in vhost '/' in exclusive use",
        )


def test_bad_consumer_priority_argument(broker: BrokerHandle) -> None:
    with temp_queue(broker) as name, connection(broker) as conn:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            conn.channel().basic_consume(name, lambda *a: None, arguments={"x-priority": "high"})
        assert _closed(excinfo) == (
            406,
            f"PRECONDITION_FAILED - invalid arg 'x-priority' for queue '{name}' in vhost '/': "
            '"expected integer, got longstr"',
        )
