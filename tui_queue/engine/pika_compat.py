"""The places the engine reaches into pika's private parts (pika 1.4), kept in one module.

1. A crash must drop TCP with no AMQP close. pika has no public way to do that, so `sever` shuts
   the socket down under it (`_impl._transport._sock`); the broker sees the connection vanish and
   requeues at once, exactly as when a worker process dies. It half-closes first, so what the
   broker sent until it noticed is still read, and can be counted.
2. pika's BlockingChannel.basic_cancel silently drops no-ack deliveries that were in flight when the
   cancel was sent (Channel._on_deliver ignores deliveries for a tag in `_cancelled`), and rejects
   ackable ones. A no-ack delivery is already gone from the broker, so dropping it loses a task for
   real; `capture_cancel_races`, put around the cancel, hands such deliveries to the worker
   instead, which keeps them (an ackable one stays ackable after cancel-ok, RabbitMQ's rule).
3. BlockingChannel.basic_ack flushes the socket at once (a poll round per ack). Inside a dispatch
   of deliveries, `ack_in_dispatch` only queues the frame; the dispatch's own process_data_events
   writes it as soon as the callbacks return. Same frames, same order, far less work per message.
4. When a connection drops, pika never dispatches the deliveries it had already read but not yet
   handed to the consumer (they stay in BlockingChannel's `_pending_events`). Under auto-ack the
   broker counts them delivered, so they are lost for real; `undispatched_deliveries` takes them
   out so the books can count each one instead of believing it still queued.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator

import pika.exceptions
import pika.spec
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

Deliver = tuple[pika.spec.Basic.Deliver, pika.spec.BasicProperties, bytes]
DeliverySink = Callable[[pika.spec.Basic.Deliver, pika.spec.BasicProperties, bytes], None]

# How long a severed connection waits for the broker to close its side before a hard shutdown.
# A live broker closes within milliseconds of reading end of stream.
SEVER_TIMEOUT = 2.0


def sever(connection: BlockingConnection, timeout: float = SEVER_TIMEOUT) -> None:
    """Drop the TCP connection without a word, as a dying process does, and let pika free it.

    It is a half close (FIN, no AMQP close): the broker reads end of stream and drops the
    connection, and everything it sent up to then is still read here. Deliveries read this way
    go to the consumer callback or stay in undispatched_deliveries(), so whoever owns the
    connection can book every delivery that was on its way. A broker that has not closed its side
    within `timeout` gets a full shutdown.
    """
    if connection.is_closed:
        return
    transport = getattr(connection._impl, "_transport", None)  # noqa: SLF001 - see module doc
    sock = getattr(transport, "_sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # already closed by the peer: nothing left to drop
            sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + timeout
        while not connection.is_closed and (remaining := deadline - time.monotonic()) > 0:
            try:
                connection.process_data_events(time_limit=remaining)
            except (pika.exceptions.AMQPError, OSError):
                return  # the expected StreamLostError: the broker closed, and pika its side
        if connection.is_closed:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # no answer: stop reading too, pika sees the end
    for _ in range(3):
        try:
            connection.process_data_events(0)
        except (pika.exceptions.AMQPError, OSError):
            return
    with contextlib.suppress(pika.exceptions.AMQPError, OSError):
        connection.close()  # pika never noticed; on a shut socket nothing reaches the broker


def undispatched_deliveries(channel: BlockingChannel) -> list[Deliver]:
    """The deliveries of a dead channel that pika read but never handed to the consumer, oldest
    first, taken out of the channel (call it once the connection is gone)."""
    pending = getattr(channel, "_pending_events", None)  # noqa: SLF001 - see module doc
    if not pending:
        return []
    found: list[Deliver] = []
    for event in pending:
        method = getattr(event, "method", None)
        if isinstance(method, pika.spec.Basic.Deliver):
            found.append((method, event.properties, event.body))
    pending.clear()
    return found


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
