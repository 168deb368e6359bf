"""Heartbeats as pika's BlockingConnection lives them, with heartbeat=2 in the URL."""

from __future__ import annotations

import time

import pika
import pika.exceptions
import pytest

from tests.conformance.helpers import BrokerHandle, pump

HEARTBEAT = 2


def _connect(broker: BrokerHandle) -> pika.BlockingConnection:
    parameters = pika.URLParameters(f"{broker.url}?heartbeat={HEARTBEAT}")
    parameters.connection_attempts = 1
    parameters.socket_timeout = 5
    return pika.BlockingConnection(parameters)


def _queue_exists(channel: pika.adapters.blocking_connection.BlockingChannel, name: str) -> bool:
    try:
        channel.queue_declare(name, passive=True)
    except pika.exceptions.ChannelClosedByBroker as closed:
        assert closed.reply_code == 404
        return False
    return True


def test_idle_connection_lives_and_stalled_one_is_dropped(broker: BrokerHandle) -> None:
    """Side by side for 3T + 0.5 s: a connection whose I/O pika keeps running (it sends
    heartbeats, nothing else) stays up; one that nobody reads or writes is dropped by the
    broker (its exclusive queue goes), and pika sees the connection lost once it looks."""
    idle = _connect(broker)
    stalled = _connect(broker)
    try:
        assert (idle._impl.params.heartbeat, stalled._impl.params.heartbeat) == (2, 2)
        stalled_queue = stalled.channel().queue_declare("", exclusive=True).method.queue
        started = time.monotonic()
        # Only `idle` is serviced while `stalled` sits unread for 3 heartbeat intervals.
        pump([idle], lambda: False, timeout=3 * HEARTBEAT + 0.5)
        assert idle.is_open
        channel = idle.channel()
        # The broker drops a silent peer after 2T..3T; allow a little more before giving up.
        dropped = pump([idle], lambda: not _queue_exists(channel, stalled_queue), 2.0)
        elapsed = time.monotonic() - started
        assert dropped, f"stalled connection still served after {elapsed:.1f}s"
        assert idle.is_open
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            stalled.process_data_events(time_limit=1)
        assert stalled.is_closed
    finally:
        for conn in (idle, stalled):
            if conn.is_open:
                conn.close()
