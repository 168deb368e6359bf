"""The places the engine reaches into pika's private parts (pika 1.4), kept in one module.

1. A crash must drop TCP with no AMQP close. pika has no public way to do that, so `sever` shuts
   the socket down under it (`_impl._transport._sock`); the broker sees the connection vanish and
   requeues at once, exactly as when a worker process dies.
2. pika's BlockingChannel.basic_cancel silently drops no-ack deliveries that were in flight when the
   cancel was sent (Channel._on_deliver ignores deliveries for a tag in `_cancelled`), and rejects
   ackable ones. A no-ack delivery is already gone from the broker, so dropping it loses a task for
   real; `capture_cancel_races`, put around the cancel, hands such deliveries to the worker
   instead, which keeps them (an ackable one stays ackable after cancel-ok, RabbitMQ's rule).
3. BlockingChannel.basic_ack flushes the socket at once (a poll round per ack). Inside a dispatch
   of deliveries, `ack_in_dispatch` only queues the frame; the dispatch's own process_data_events
   writes it as soon as the callbacks return. Same frames, same order, far less work per message.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator

import pika.exceptions
import pika.spec
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

DeliverySink = Callable[[pika.spec.Basic.Deliver, pika.spec.BasicProperties, bytes], None]


def sever(connection: BlockingConnection) -> None:
    """Drop the TCP connection without a word, then let pika notice and free its resources."""
    transport = getattr(connection._impl, "_transport", None)  # noqa: SLF001 - see module doc
    sock = getattr(transport, "_sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # already closed by the peer: nothing left to drop
            sock.shutdown(socket.SHUT_RDWR)
    for _ in range(10):
        if connection.is_closed:
            return
        try:
            connection.process_data_events(0)
        except (pika.exceptions.AMQPError, OSError):
            continue  # the expected StreamLostError: pika has closed its side
    if not connection.is_closed:  # pika never noticed: close it the ordinary way
        with contextlib.suppress(pika.exceptions.AMQPError, OSError):
            connection.close()


@contextlib.contextmanager
def capture_cancel_races(channel: BlockingChannel, sink: DeliverySink) -> Iterator[None]:
    """While a basic.cancel of ours is in flight, route the deliveries that race it to `sink`
    instead of pika's drop/reject. Installed only around the cancel: the hot path stays pika's."""
    impl = channel._impl  # noqa: SLF001 - see module doc
    original = impl._on_deliver  # noqa: SLF001
    cancelled = impl._cancelled  # noqa: SLF001 - the set pika fills when it sends basic.cancel

    def on_deliver(method_frame: object, header_frame: object, body: bytes) -> None:
        method = method_frame.method  # type: ignore[attr-defined]
        if method.consumer_tag in cancelled:
            sink(method, header_frame.properties, body)  # type: ignore[attr-defined]
            return
        original(method_frame, header_frame, body)

    impl._on_deliver = on_deliver  # noqa: SLF001
    try:
        yield
    finally:
        del impl._on_deliver  # back to the class's own method


def ack_in_dispatch(channel: BlockingChannel, delivery_tag: int) -> None:
    """basic.ack queued on the connection, written when the current dispatch ends (call only
    from a delivery callback running inside process_data_events)."""
    channel._impl.basic_ack(delivery_tag=delivery_tag, multiple=False)  # noqa: SLF001
