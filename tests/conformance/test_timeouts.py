"""consumer_timeout: run on brokers configured with a 2 s timeout and a 500 ms channel tick."""

from __future__ import annotations

import time

import pytest
from pamqp import commands

from tests.conformance.conftest import TIMEOUT_MS
from tests.conformance.helpers import (
    BrokerHandle,
    close_fields,
    connection,
    get_all,
    make_consumer,
    publish,
    pump,
    raw_ready,
    temp_queue,
)
from tests.support.raw_amqp import RawAMQPClient

TIMED_OUT = (
    "PRECONDITION_FAILED - delivery acknowledgement on channel {channel} timed out. "
    f"Timeout value used: {TIMEOUT_MS} ms. "
    "This timeout value can be configured, see consumers doc guide to learn more"
)

#: The close comes on the first channel tick after the timeout: T .. T + tick (+ slack).
EARLIEST = TIMEOUT_MS / 1000 - 0.1
LATEST = TIMEOUT_MS / 1000 + 2.0


def _wait_for_channel_close(client: RawAMQPClient, since: float) -> tuple[tuple, float]:
    frame = client.read_until(
        lambda f: f.is_method(commands.Channel.Close) or f.is_method(commands.Connection.Close),
        timeout=LATEST + 1,
    )
    elapsed = time.monotonic() - since
    assert frame.is_method(commands.Channel.Close), frame
    assert frame.channel == 1
    client.send_frame(commands.Channel.CloseOk(), 1)
    return close_fields(frame.method), elapsed


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_consumer_timeout(timeout_broker: BrokerHandle, queue_type: str) -> None:
    """Scenario 15: the channel gets 406 timed out (class/method 0/0); the message is requeued;
    the connection survives."""
    broker = timeout_broker
    with temp_queue(broker, queue_type) as name:
        publish(broker, name, ["slow"])
        client = raw_ready(broker, channels=1, timeout=LATEST + 2)
        try:
            client.call(commands.Basic.Qos(prefetch_count=1), 1, commands.Basic.QosOk)
            client.call(commands.Basic.Consume(queue=name), 1, commands.Basic.ConsumeOk)
            client.read_until(lambda f: f.is_method(commands.Basic.Deliver))
            fields, elapsed = _wait_for_channel_close(client, time.monotonic())
            assert fields == (406, TIMED_OUT.format(channel=1), 0, 0)
            assert EARLIEST <= elapsed <= LATEST, elapsed
            client.open_channel(2)  # the connection is still fine
            client.close_connection()
        finally:
            client.close()
        with connection(broker) as conn:
            got = get_all(conn.channel(), name)
        assert [(m.body, m.redelivered) for m in got] == [("slow", True)]


def test_consumer_timeout_counts_basic_get(timeout_broker: BrokerHandle) -> None:
    broker = timeout_broker
    with temp_queue(broker) as name:
        publish(broker, name, ["held"])
        client = raw_ready(broker, channels=1, timeout=LATEST + 2)
        try:
            client.send_frame(commands.Basic.Get(queue=name), 1)
            client.read_until(lambda f: f.is_method(commands.Basic.GetOk))
            fields, elapsed = _wait_for_channel_close(client, time.monotonic())
            assert fields == (406, TIMED_OUT.format(channel=1), 0, 0)
            assert EARLIEST <= elapsed <= LATEST, elapsed
        finally:
            client.close()
        with connection(broker) as conn:
            assert [m.body for m in get_all(conn.channel(), name)] == ["held"]


def test_acked_in_time_is_fine(timeout_broker: BrokerHandle) -> None:
    broker = timeout_broker
    with temp_queue(broker) as name, connection(broker) as conn:
        publish(broker, name, ["a", "b", "c"])
        consumer = make_consumer(conn, prefetch=1).start(name)
        # each message is held for 1 s (half the timeout) before its ack
        for count in (1, 2, 3):
            assert pump([conn], lambda count=count: len(consumer.received) == count)
            pump([conn], lambda: False, timeout=1.0)
            consumer.channel.basic_ack(consumer.received[-1].delivery_tag)
        assert consumer.channel.is_open
        assert consumer.bodies == ["a", "b", "c"]
