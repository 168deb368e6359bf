"""queue.declare / bind / purge / delete: names, equivalence, exclusive, auto-delete, counts."""

from __future__ import annotations

import re

import pika.exceptions
import pytest
from pamqp import commands

from tests.conformance.helpers import (
    QUEUE_TYPES,
    BrokerHandle,
    close_fields,
    connection,
    counts,
    delete_queue,
    expect_channel_close,
    make_consumer,
    publish,
    publish_confirmed,
    pump,
    queue_args,
    raw_ready,
    temp_queue,
    unique,
)


def _locked(queue: str) -> str:
    return (
        f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{queue}' in vhost '/'."
        " It could be originally declared on another connection or the exclusive property value"
        " does not match that of the original declaration."
    )


def _channel_closed(excinfo: pytest.ExceptionInfo) -> tuple[int, str]:
    return excinfo.value.reply_code, excinfo.value.reply_text


# -- names ---------------------------------------------------------------------------------


def test_durable_mismatch_closes_only_that_channel(broker: BrokerHandle) -> None:
    """Scenario 3."""
    name = unique("task_queue")
    with connection(broker) as conn:
        first = conn.channel()
        first.queue_declare(name)
        second = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            second.queue_declare(name, durable=True)
        assert _channel_closed(excinfo) == (
            406,
            f"PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{name}' in vhost '/': "
            "received 'true' but current is 'false'",
        )
        assert first.is_open
        assert first.queue_declare(name).method.queue == name
        first.queue_delete(name)


def test_names(broker: BrokerHandle) -> None:
    """Scenario 4."""
    missing = unique("missing")
    with connection(broker) as conn:
        channel = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.queue_declare(missing, passive=True)
        assert _channel_closed(excinfo) == (404, f"NOT_FOUND - no queue '{missing}' in vhost '/'")
        channel = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.queue_declare("amq.x")
        assert _channel_closed(excinfo) == (
            403,
            "ACCESS_REFUSED - queue name 'amq.x' contains reserved prefix 'amq.*'",
        )
        channel = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.queue_declare("amq.x", passive=True)
        assert _channel_closed(excinfo) == (404, "NOT_FOUND - no queue 'amq.x' in vhost '/'")
        channel = conn.channel()
        name = channel.queue_declare("", exclusive=True).method.queue
        assert re.fullmatch(r"amq\.gen-[A-Za-z0-9_-]{22}", name)
        other = channel.queue_declare("", exclusive=True).method.queue
        assert other != name


@pytest.mark.parametrize(
    ("method", "ids"),
    [
        (commands.Queue.Bind(queue="", exchange="amq.direct", routing_key="k"), (50, 20)),
        (commands.Queue.Unbind(queue="", exchange="amq.direct", routing_key="k"), (50, 50)),
        (commands.Basic.Consume(queue=""), (60, 20)),
        (commands.Basic.Get(queue=""), (60, 70)),
        (commands.Queue.Purge(queue=""), (50, 30)),
        (commands.Queue.Delete(queue=""), (50, 40)),
    ],
    ids=["bind", "unbind", "consume", "get", "purge", "delete"],
)
def test_empty_name_without_previous_declare(broker: BrokerHandle, method, ids) -> None:
    client = raw_ready(broker, channels=1)
    try:
        client.send_frame(method, 1)
        close = expect_channel_close(client, 1)
        assert close_fields(close) == (404, "NOT_FOUND - no previously declared queue", *ids)
        client.close_connection()
    finally:
        client.close()


def test_empty_name_means_last_declared_queue_of_the_channel(broker: BrokerHandle) -> None:
    with connection(broker) as conn:
        channel = conn.channel()
        name = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind("", "amq.direct", routing_key="k-" + name)
        channel.basic_publish("amq.direct", "k-" + name, b"via-shortcut")
        method, _props, body = channel.basic_get("", auto_ack=True)
        assert (method.routing_key, body) == ("k-" + name, b"via-shortcut")
        assert channel.queue_purge("").method.message_count == 0
        # A fresh channel has no "last declared queue".
        other = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            other.queue_purge("")
        assert _channel_closed(excinfo) == (404, "NOT_FOUND - no previously declared queue")
        # A passive declare does not use the shortcut at all.
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.queue_declare("", passive=True)
        assert _channel_closed(excinfo) == (404, "NOT_FOUND - no queue '' in vhost '/'")


def test_server_named_consumer_tag(broker: BrokerHandle) -> None:
    with connection(broker) as conn:
        channel = conn.channel()
        name = channel.queue_declare("", exclusive=True).method.queue
        tag = channel.basic_consume(name, lambda *args: None)
        # pika makes its own tags; ask the broker for one with the raw client instead.
        assert tag
    client = raw_ready(broker, channels=1)
    try:
        client.call(commands.Queue.Declare(queue="", exclusive=True), 1, commands.Queue.DeclareOk)
        ok = client.call(commands.Basic.Consume(queue=""), 1, commands.Basic.ConsumeOk)
        assert re.fullmatch(r"amq\.ctag-[A-Za-z0-9_-]{22}", ok.consumer_tag)
        client.close_connection()
    finally:
        client.close()


# -- equivalence ---------------------------------------------------------------------------


def test_redeclare_equivalence_texts(broker: BrokerHandle) -> None:
    name = unique()
    prefix = "PRECONDITION_FAILED - inequivalent arg"
    with connection(broker) as conn:
        conn.channel().queue_declare(name)
        cases = [
            (
                {"durable": True, "auto_delete": True},
                f"{prefix} 'durable' for queue '{name}' in vhost '/': "
                "received 'true' but current is 'false'",
            ),
            (
                {"auto_delete": True},
                f"{prefix} 'auto_delete' for queue '{name}' in vhost '/': "
                "received 'true' but current is 'false'",
            ),
            (
                {"arguments": {"x-max-length": 10}},
                f"{prefix} 'x-max-length' for queue '{name}' in vhost '/': "
                "received the value '10' of type 'signedint' but current is none",
            ),
            (
                {"arguments": {"x-queue-type": "quorum"}},
                f"{prefix} 'x-queue-type' for queue '{name}' in vhost '/': "
                "received the value 'quorum' of type 'longstr' but current is none",
            ),
        ]
        for kwargs, text in cases:
            channel = conn.channel()
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
                channel.queue_declare(name, **kwargs)
            assert _channel_closed(excinfo) == (406, text), kwargs
        channel = conn.channel()
        # Unknown x-args and an explicit classic type are not compared.
        channel.queue_declare(name, arguments={"x-unknown": 1})
        channel.queue_declare(name, arguments={"x-queue-type": "classic"})
        # A passive declare ignores every other field.
        channel.queue_declare(name, passive=True, durable=True, arguments={"x-max-length": 1})
        channel.queue_delete(name)


def test_quorum_redeclared_as_classic(broker: BrokerHandle) -> None:
    with temp_queue(broker, "quorum") as name, connection(broker) as conn:
        channel = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.queue_declare(name, durable=True)
        assert _channel_closed(excinfo) == (
            406,
            f"PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '{name}' in "
            "vhost '/': received none but current is the value 'quorum' of type 'longstr'",
        )


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        (
            {"durable": True, "auto_delete": True},
            "PRECONDITION_FAILED - invalid property 'auto-delete' for queue '{q}' in vhost '/'",
        ),
        (
            {"durable": False},
            "PRECONDITION_FAILED - invalid property 'non-durable' for queue '{q}' in vhost '/'",
        ),
        (
            {"durable": True, "exclusive": True},
            "PRECONDITION_FAILED - invalid property 'exclusive-owner' for queue '{q}' in vhost '/'",
        ),
        (
            {"durable": True, "arguments": {"x-max-priority": 5}},
            "PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue '{q}' in vhost '/' "
            "of queue type rabbit_quorum_queue",
        ),
    ],
    ids=["auto-delete", "non-durable", "exclusive", "x-max-priority"],
)
def test_quorum_declare_errors(broker: BrokerHandle, kwargs: dict, text: str) -> None:
    name = unique("qq")
    kwargs = dict(kwargs)
    arguments = {"x-queue-type": "quorum", **kwargs.pop("arguments", {})}
    with connection(broker) as conn:
        channel = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.queue_declare(name, arguments=arguments, **kwargs)
        assert _channel_closed(excinfo) == (406, text.format(q=name))
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            conn.channel().queue_declare(name, passive=True)


def test_unsupported_queue_type(broker: BrokerHandle) -> None:
    name = unique()
    with connection(broker) as conn:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            conn.channel().queue_declare(name, durable=True, arguments={"x-queue-type": "bogus"})
        assert _channel_closed(excinfo) == (
            406,
            f"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue '{name}' in vhost '/': "
            "\"unsupported queue type 'bogus'\"",
        )


# -- exclusive -----------------------------------------------------------------------------


EXCLUSIVE_USES = {
    "declare": (lambda q: commands.Queue.Declare(queue=q), (50, 10)),
    "declare-exclusive": (lambda q: commands.Queue.Declare(queue=q, exclusive=True), (50, 10)),
    "declare-passive": (lambda q: commands.Queue.Declare(queue=q, passive=True), (50, 10)),
    "bind": (
        lambda q: commands.Queue.Bind(queue=q, exchange="amq.direct", routing_key="k"),
        (50, 20),
    ),
    "consume": (lambda q: commands.Basic.Consume(queue=q), (60, 20)),
    "get": (lambda q: commands.Basic.Get(queue=q), (60, 70)),
    "purge": (lambda q: commands.Queue.Purge(queue=q), (50, 30)),
    "delete": (lambda q: commands.Queue.Delete(queue=q), (50, 40)),
    "delete-if-empty": (lambda q: commands.Queue.Delete(queue=q, if_empty=True), (50, 40)),
}


@pytest.mark.parametrize("use", list(EXCLUSIVE_USES))
def test_exclusive_queue_from_other_connection(broker: BrokerHandle, use: str) -> None:
    """Scenario 5 (first part), for each kind of use."""
    name = unique("excl")
    make_method, ids = EXCLUSIVE_USES[use]
    with connection(broker) as owner:
        owner.channel().queue_declare(name, exclusive=True)
        client = raw_ready(broker, channels=1)
        try:
            client.send_frame(make_method(name), 1)
            close = expect_channel_close(client, 1)
            assert close_fields(close) == (405, _locked(name), *ids)
            client.close_connection()
        finally:
            client.close()


def test_exclusive_queue_unbind_from_other_connection_is_not_checked(
    broker: BrokerHandle,
) -> None:
    """RabbitMQ does not check exclusivity on queue.unbind (a missing binding is just ok)."""
    name = unique("excl")
    with connection(broker) as owner, connection(broker) as other:
        owner.channel().queue_declare(name, exclusive=True)
        other.channel().queue_unbind(name, "amq.direct", routing_key="k")


def test_exclusive_queue_owner_closes(broker: BrokerHandle) -> None:
    """Scenario 5: 405 for another connection; 404 once the owner has closed."""
    name = unique("excl")
    with connection(broker) as other:
        with connection(broker) as owner:
            owner.channel().queue_declare(name, exclusive=True)
            channel = other.channel()
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
                channel.queue_declare(name, passive=True)
            assert _channel_closed(excinfo) == (405, _locked(name))
            # Others may still publish to it.
            other.channel().basic_publish("", name, b"from-other")
            assert owner.channel().queue_declare(name, passive=True).method.message_count == 1
        channel = other.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.queue_declare(name, passive=True)
        assert _channel_closed(excinfo) == (404, f"NOT_FOUND - no queue '{name}' in vhost '/'")


def test_exclusive_queue_owner_redeclare(broker: BrokerHandle) -> None:
    name = unique("excl")
    with connection(broker) as owner:
        channel = owner.channel()
        channel.queue_declare(name, exclusive=True)
        # exclusive forces durable=false before the comparison
        assert channel.queue_declare(name, exclusive=True, durable=True).method.queue == name
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.queue_declare(name, exclusive=False)
        assert _channel_closed(excinfo) == (405, _locked(name))


# -- auto-delete ---------------------------------------------------------------------------


def test_auto_delete_after_last_consumer(broker: BrokerHandle) -> None:
    name = unique("ad")
    with connection(broker) as conn:
        channel = conn.channel()
        channel.queue_declare(name, auto_delete=True)
        channel.basic_publish("", name, b"x")
        assert channel.basic_get(name, auto_ack=True)[2] == b"x"
        # basic.get does not count as a consumer: the queue is still there.
        assert channel.queue_declare(name, passive=True).method.consumer_count == 0
        first = channel.basic_consume(name, lambda *a: None)
        second = channel.basic_consume(name, lambda *a: None)
        channel.basic_cancel(first)
        assert channel.queue_declare(name, passive=True).method.consumer_count == 1
        channel.basic_cancel(second)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.queue_declare(name, passive=True)
        assert _channel_closed(excinfo) == (404, f"NOT_FOUND - no queue '{name}' in vhost '/'")


def test_auto_delete_when_consumer_channel_closes(broker: BrokerHandle) -> None:
    name = unique("ad")
    with connection(broker) as conn:
        channel = conn.channel()
        channel.queue_declare(name, auto_delete=True)
        consumer_channel = conn.channel()
        consumer_channel.basic_consume(name, lambda *a: None)
        consumer_channel.close()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            channel.queue_declare(name, passive=True)


# -- purge / delete / counts ---------------------------------------------------------------


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_declare_ok_and_get_ok_counts(broker: BrokerHandle, queue_type: str) -> None:
    """Scenario 14: get-ok counts what is left; declare-ok excludes unacked messages."""
    with temp_queue(broker, queue_type) as name, connection(broker) as conn:
        channel = conn.channel()
        publish_confirmed(channel, name, ["m1", "m2", "m3"])
        ok = channel.queue_declare(name, durable=True, arguments=queue_args(queue_type))
        assert (ok.method.message_count, ok.method.consumer_count) == (3, 0)
        method, _props, body = channel.basic_get(name)
        assert (body, method.message_count) == (b"m1", 2)
        method, _props, body = channel.basic_get(name)
        assert (body, method.message_count) == (b"m2", 1)
        # Quorum quirk: each unsettled basic.get counts as a consumer in declare-ok.
        expected = (1, {"classic": 0, "quorum": 2}[queue_type])
        assert counts(broker, name, expected) == expected
        channel.basic_ack(method.delivery_tag, multiple=True)
        assert counts(broker, name, (1, 0)) == (1, 0)
        method, _props, body = channel.basic_get(name)
        assert (body, method.message_count) == (b"m3", 0)
        assert channel.basic_get(name) == (None, None, None)
        channel.basic_ack(method.delivery_tag)
        assert counts(broker, name, (0, 0)) == (0, 0)


def test_get_empty_frame(broker: BrokerHandle) -> None:
    client = raw_ready(broker, channels=1)
    try:
        client.call(commands.Queue.Declare(queue="", exclusive=True), 1, commands.Queue.DeclareOk)
        client.send_frame(commands.Basic.Get(queue=""), 1)
        frame = client.read_until(lambda f: True)
        assert frame.is_method(commands.Basic.GetEmpty)
        assert frame.payload == b"\x00\x3c\x00\x48\x00"  # cluster_id = ""
        client.close_connection()
    finally:
        client.close()


def test_purge_counts_ready_only(broker: BrokerHandle) -> None:
    """Scenario 13 (purge)."""
    name = unique()
    with connection(broker) as conn:
        channel = conn.channel()
        channel.queue_declare(name, exclusive=True)
        publish_confirmed(channel, name, ["a", "b", "c"])
        channel.basic_get(name)  # one unacked
        assert channel.queue_purge(name).method.message_count == 2
        assert channel.queue_purge(name).method.message_count == 0


def test_delete_if_empty_if_unused_and_missing(broker: BrokerHandle) -> None:
    """Scenario 13 (delete): if_empty 'not empty', if_unused 'in use', missing queue is ok."""
    name = unique()
    with connection(broker) as conn:
        channel = conn.channel()
        channel.queue_declare(name)
        channel.basic_publish("", name, b"x")
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.queue_delete(name, if_empty=True)
        assert _channel_closed(excinfo) == (
            406,
            f"PRECONDITION_FAILED - queue '{name}' in vhost '/' not empty",
        )
        channel = conn.channel()
        channel.basic_consume(name, lambda *a: None, auto_ack=True)
        other = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            other.queue_delete(name, if_unused=True)
        assert _channel_closed(excinfo) == (
            406,
            f"PRECONDITION_FAILED - queue '{name}' in vhost '/' in use",
        )
        assert conn.channel().queue_delete(name).method.message_count == 0
        assert conn.channel().queue_delete(name).method.message_count == 0  # now missing


def test_delete_if_empty_ignores_unacked(broker: BrokerHandle) -> None:
    name = unique()
    with connection(broker) as conn:
        channel = conn.channel()
        channel.queue_declare(name)
        publish_confirmed(channel, name, ["x"])
        assert channel.basic_get(name)[2] == b"x"  # unacked
        assert conn.channel().queue_delete(name, if_empty=True).method.message_count == 0


def test_delete_returns_ready_count(broker: BrokerHandle) -> None:
    name = unique()
    with connection(broker) as conn:
        channel = conn.channel()
        channel.queue_declare(name)
        publish_confirmed(channel, name, ["a", "b", "c"])
        channel.basic_get(name)
        assert conn.channel().queue_delete(name).method.message_count == 2


@pytest.mark.parametrize("flag", ["if_unused", "if_empty"])
def test_quorum_delete_flags_not_implemented(broker: BrokerHandle, flag: str) -> None:
    with temp_queue(broker, "quorum") as name, connection(broker) as conn:
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as excinfo:
            conn.channel().queue_delete(name, **{flag: True})
        assert _channel_closed(excinfo) == (
            540,
            f"NOT_IMPLEMENTED - cannot delete queue '{name}' in vhost '/'. queue.delete "
            f"operations with {flag.replace('_', '-')} flag set are not supported by quorum queues",
        )


# -- deleted under a consumer --------------------------------------------------------------


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_delete_cancels_consumers_and_redeclare_does_not_reattach(
    broker: BrokerHandle, queue_type: str
) -> None:
    """Scenario 13: deleting a queue fires the consumer's broker-cancel callback."""
    name = unique("del")
    with connection(broker) as conn, connection(broker) as admin:
        admin_channel = admin.channel()
        admin_channel.queue_declare(name, durable=True, arguments=queue_args(queue_type))
        publish_confirmed(admin_channel, name, ["m1"])
        consumer = make_consumer(conn).start(name)
        assert pump([conn], lambda: len(consumer.received) == 1)
        assert admin_channel.queue_delete(name).method.message_count == 0
        assert pump([conn], lambda: len(consumer.cancelled_by_broker) == 1)
        frame = consumer.cancelled_by_broker[0]
        assert frame.method.consumer_tag == consumer.tag
        # The unacked delivery of the deleted queue can still be acked without error.
        consumer.channel.basic_ack(consumer.received[0].delivery_tag)
        admin_channel.queue_declare(name, durable=True, arguments=queue_args(queue_type))
        publish_confirmed(admin_channel, name, ["after"])
        ok = admin_channel.queue_declare(name, passive=True)
        assert (ok.method.message_count, ok.method.consumer_count) == (1, 0)
        assert consumer.bodies == ["m1"]
        assert consumer.channel.is_open
    delete_queue(broker, name)


def test_cancel_notification_frame(broker: BrokerHandle) -> None:
    name = unique("del")
    client = raw_ready(broker, channels=1)
    try:
        client.call(commands.Queue.Declare(queue=name), 1, commands.Queue.DeclareOk)
        client.call(
            commands.Basic.Consume(queue=name, consumer_tag="t1"), 1, commands.Basic.ConsumeOk
        )
        with connection(broker) as admin:
            admin.channel().queue_delete(name)
        frame = client.read_until(lambda f: True)
        assert frame.channel == 1
        assert frame.is_method(commands.Basic.Cancel)
        assert (frame.method.consumer_tag, frame.method.nowait) == ("t1", True)
        # the old tag is still known to the channel
        ok = client.call(commands.Basic.Cancel(consumer_tag="t1"), 1, commands.Basic.CancelOk)
        assert ok.consumer_tag == "t1"
        client.close_connection()
    finally:
        client.close()


def test_publish_then_count_on_fresh_connection(broker: BrokerHandle) -> None:
    with temp_queue(broker) as name:
        publish(broker, name, ["a", "b"])
        assert counts(broker, name, (2, 0)) == (2, 0)
