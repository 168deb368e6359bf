"""A client that sends but never reads cannot grow the broker's memory without bound (issue 2).

The broker stops reading a connection whose unsent output is over a bound, as RabbitMQ's flow
control does, and stops delivering to it; the kernel's socket buffers then push back on the
client.
"""

from __future__ import annotations

import select
import socket

import pika
from pamqp import body, commands, frame, header

from tests.support.raw_amqp import RawAMQPClient
from tui_queue.broker import BrokerThread

MESSAGE = b"x" * 64 * 1024
# Outbound bound (4 MiB) + one flushed batch + kernel socket buffers on both ends.
PUSHBACK_LIMIT = 64 * 1024 * 1024


def _largest_outbound_buffer(broker: BrokerThread) -> int:
    assert broker.broker is not None
    return max(
        (
            c.transport.get_write_buffer_size()
            for c in list(broker.broker.connections)
            if c.transport
        ),
        default=0,
    )


def _send_until_blocked(sock: socket.socket, chunk: bytes, stall: float = 1.0) -> int:
    """Send `chunk` again and again until the socket stays unwritable for `stall` seconds."""
    sock.setblocking(False)
    sent = 0
    pending = memoryview(chunk)
    while sent < 4 * PUSHBACK_LIMIT:
        _, writable, _ = select.select([], [sock], [], stall)
        if not writable:
            break
        try:
            written = sock.send(pending)
        except BlockingIOError:
            continue
        sent += written
        pending = pending[written:] or memoryview(chunk)
    return sent


def test_publisher_that_never_reads_its_returns_is_stopped(embedded: BrokerThread) -> None:
    client = RawAMQPClient(embedded.host, embedded.amqp_port).connect()
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    client.handshake()
    client.open_channel(1)
    # Unroutable and mandatory: every publish makes the broker send the whole message back.
    publish = (
        frame.marshal(commands.Basic.Publish(routing_key="nowhere", mandatory=True), 1)
        + frame.marshal(header.ContentHeader(0, len(MESSAGE)), 1)
        + frame.marshal(body.ContentBody(MESSAGE), 1)
    )
    accepted = _send_until_blocked(client.sock, publish)
    try:
        assert accepted < PUSHBACK_LIMIT, f"the broker kept reading: {accepted} bytes taken"
        assert _largest_outbound_buffer(embedded) < 2 * embedded.config.outbound_high_water
        # Everyone else is still served.
        other = pika.BlockingConnection(pika.URLParameters(embedded.url))
        other.channel().queue_declare("", exclusive=True)
        other.close()
    finally:
        client.abort()


def test_consumer_that_never_reads_gets_no_more_than_the_bound(embedded: BrokerThread) -> None:
    queue = "flow-unread-consumer"
    publisher = pika.BlockingConnection(pika.URLParameters(embedded.url))
    channel = publisher.channel()
    channel.queue_declare(queue)
    consumer = RawAMQPClient(embedded.host, embedded.amqp_port).connect()
    consumer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    consumer.handshake()
    consumer.open_channel(1)
    consumer.call(
        commands.Basic.Consume(queue=queue, no_ack=True, consumer_tag="deaf"),
        1,
        commands.Basic.ConsumeOk,
    )
    total = 1000  # 64 MiB of messages, far more than the bound
    for _ in range(total):
        channel.basic_publish("", queue, MESSAGE)
    ready = channel.queue_declare(queue, passive=True).method.message_count
    try:
        # The deaf consumer was sent only what fits under the bound; the rest waits in the queue.
        assert ready > total // 2, f"only {ready} of {total} left: the broker kept sending"
        assert _largest_outbound_buffer(embedded) < 2 * embedded.config.outbound_high_water
    finally:
        consumer.abort()
        channel.queue_delete(queue)
        publisher.close()
