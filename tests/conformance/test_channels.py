"""Channel lifecycle and limits: open/close state, channel_max, flow, qos prefetch_size."""

from __future__ import annotations

import pika.exceptions
import pytest
from pamqp import commands

from tests.conformance.helpers import (
    BrokerHandle,
    close_fields,
    connection,
    expect_connection_close,
    raw_ready,
    read_connection_close,
)


@pytest.mark.parametrize(
    ("method", "ids"),
    [
        (commands.Queue.Declare(queue="q"), (50, 10)),
        (commands.Channel.Close(200, "x", 0, 0), (20, 40)),
        (commands.Channel.CloseOk(), (20, 41)),
        (commands.Basic.Qos(prefetch_count=1), (60, 10)),
    ],
    ids=["queue.declare", "channel.close", "channel.close-ok", "basic.qos"],
)
def test_method_before_channel_open(broker: BrokerHandle, method, ids) -> None:
    client = raw_ready(broker, channels=0)
    try:
        client.send_frame(method, 5)
        close = read_connection_close(client)
        assert close_fields(close) == (504, "CHANNEL_ERROR - expected 'channel.open'", *ids)
    finally:
        client.close()


def test_channel_open_twice(broker: BrokerHandle) -> None:
    client = raw_ready(broker, channels=1)
    try:
        client.send_frame(commands.Channel.Open(), 1)
        assert close_fields(read_connection_close(client)) == (
            504,
            "CHANNEL_ERROR - second 'channel.open' seen",
            20,
            10,
        )
    finally:
        client.close()


@pytest.mark.parametrize(
    ("method", "ids"),
    [(commands.Channel.Open(), (20, 10)), (commands.Queue.Declare(queue="q"), (50, 10))],
    ids=["channel.open", "queue.declare"],
)
def test_channel_method_on_channel_0(broker: BrokerHandle, method, ids) -> None:
    client = raw_ready(broker, channels=0)
    try:
        client.send_frame(method, 0)
        assert close_fields(read_connection_close(client)) == (
            504,
            "CHANNEL_ERROR - unexpected method in connection state running",
            *ids,
        )
    finally:
        client.close()


def test_channel_open_ok_payload(broker: BrokerHandle) -> None:
    client = raw_ready(broker, channels=0)
    try:
        client.send_frame(commands.Channel.Open(), 1)
        frame = client.read_until(lambda f: True)
        assert frame.channel == 1
        assert frame.is_method(commands.Channel.OpenOk)
        assert frame.payload == b"\x00\x14\x00\x0b\x00\x00\x00\x00"  # channel_id = ""
    finally:
        client.close()


def test_channel_max_counts_open_channels(broker: BrokerHandle) -> None:
    """channel_max limits the number of open channels, not the channel numbers."""
    client = raw_ready(broker, channels=0, channel_max=2)
    try:
        client.open_channel(100)
        client.open_channel(65535)
        client.send_frame(commands.Channel.Open(), 3)
        close = expect_connection_close(client).close
        assert close_fields(close) == (
            530,
            "NOT_ALLOWED - number of channels opened (2) has reached the negotiated "
            "channel_max (2)",
            0,
            0,
        )
    finally:
        client.close()


def test_channel_close_frees_a_slot(broker: BrokerHandle) -> None:
    client = raw_ready(broker, channels=0, channel_max=1)
    try:
        client.open_channel(1)
        client.call(commands.Channel.Close(200, "bye", 0, 0), 1, commands.Channel.CloseOk)
        client.open_channel(2)
        client.close_connection()
    finally:
        client.close()


def test_channel_max_with_pika(broker: BrokerHandle) -> None:
    with connection(broker, channel_max=3) as conn:
        channels = [conn.channel() for _ in range(3)]
        assert all(c.is_open for c in channels)
        with pytest.raises(pika.exceptions.NoFreeChannels):
            conn.channel()  # pika refuses client-side at the negotiated limit


def test_channel_flow_active_false_is_not_implemented(broker: BrokerHandle) -> None:
    client = raw_ready(broker, channels=1)
    try:
        client.send_frame(commands.Channel.Flow(active=False), 1)
        assert close_fields(read_connection_close(client)) == (
            540,
            "NOT_IMPLEMENTED - active=false",
            20,
            20,
        )
    finally:
        client.close()


def test_channel_flow_active_true(broker: BrokerHandle) -> None:
    client = raw_ready(broker, channels=1)
    try:
        ok = client.call(commands.Channel.Flow(active=True), 1, commands.Channel.FlowOk)
        assert ok.active is True
        client.close_connection()
    finally:
        client.close()


@pytest.mark.parametrize("size", [1, 100000])
def test_prefetch_size_is_not_implemented(broker: BrokerHandle, size: int) -> None:
    """Scenario 15 (first part), raw: the value is printed in the text."""
    client = raw_ready(broker, channels=1)
    try:
        client.send_frame(commands.Basic.Qos(prefetch_size=size, prefetch_count=3), 1)
        assert close_fields(read_connection_close(client)) == (
            540,
            f"NOT_IMPLEMENTED - prefetch_size!=0 ({size})",
            60,
            10,
        )
    finally:
        client.close()


def test_prefetch_size_pika(broker: BrokerHandle) -> None:
    """Scenario 15: prefetch_size=1 closes the connection with 540."""
    with connection(broker) as conn:
        channel = conn.channel()
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as excinfo:
            channel.basic_qos(prefetch_size=1)
        assert (excinfo.value.reply_code, excinfo.value.reply_text) == (
            540,
            "NOT_IMPLEMENTED - prefetch_size!=0 (1)",
        )


def test_channel_error_leaves_other_channels_working(broker: BrokerHandle) -> None:
    with connection(broker) as conn:
        good = conn.channel()
        bad = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            bad.queue_declare("tq-missing-queue-for-channel-test", passive=True)
        assert excinfo.value.reply_code == 404
        assert not bad.is_open
        assert good.queue_declare("", exclusive=True).method.queue.startswith("amq.gen-")
        assert conn.channel().is_open


def test_after_channel_close_only_close_ok_counts(broker: BrokerHandle) -> None:
    """After the server closes a channel it ignores everything on it until close-ok."""
    client = raw_ready(broker, channels=1)
    try:
        client.send_frame(commands.Queue.Declare(queue="tq-missing", passive=True), 1)
        frame = client.read_until(lambda f: True)
        assert frame.is_method(commands.Channel.Close)
        # These are ignored: no reply, no connection error.
        client.send_frame(commands.Queue.Declare(queue="", exclusive=True), 1)
        client.send_frame(commands.Basic.Qos(prefetch_count=1), 1)
        client.send_frame(commands.Channel.CloseOk(), 1)
        client.open_channel(1)
        ok = client.call(
            commands.Queue.Declare(queue="", exclusive=True), 1, commands.Queue.DeclareOk
        )
        assert ok.queue.startswith("amq.gen-")
        client.close_connection()
    finally:
        client.close()
