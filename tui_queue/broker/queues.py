"""Queues: ready messages in order, consumers in a round-robin ring, and credit-based dispatch.

Dispatch follows RabbitMQ's queue process: a delivery goes to the consumer at the head of the
highest-priority ring, which then moves to the tail. A consumer without credit (prefetch used up,
channel limit reached, flow off, or its socket backed up) leaves the ring, and rejoins at the tail
once credit returns. That is what turns round-robin into fair dispatch with prefetch 1.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from tui_queue.broker.codec import Table, Typed
from tui_queue.broker.message import Entry, Message, with_header

if TYPE_CHECKING:
    from tui_queue.broker.vhost import VirtualHost


class ConsumerOwner(Protocol):
    """What a queue needs from the channel a consumer lives on."""

    def can_send(self, consumer: Consumer) -> bool: ...

    def deliver(self, consumer: Consumer, queue: Queue, entry: Entry) -> None: ...

    def cancelled_by_broker(self, consumer: Consumer) -> None: ...


class EntryStore(Protocol):
    """Where a durable queue writes down the messages that must survive a restart."""

    def enqueued(self, queue: Queue, entry: Entry) -> bool: ...

    def released(self, entry: Entry) -> None: ...

    def delivered(self, entry: Entry) -> None: ...

    def returned(self, entry: Entry) -> None: ...


class Consumer:
    __slots__ = (
        "tag",
        "encoded_tag",
        "owner",
        "queue",
        "no_ack",
        "exclusive",
        "prefetch",
        "unacked",
        "priority",
        "arguments",
        "blocked",
        "active",
    )

    def __init__(
        self,
        tag: str,
        owner: ConsumerOwner,
        queue: Queue,
        no_ack: bool,
        exclusive: bool,
        prefetch: int,
        priority: int,
        arguments: Table,
    ) -> None:
        self.tag = tag
        self.encoded_tag = b""
        self.owner = owner
        self.queue = queue
        self.no_ack = no_ack
        self.exclusive = exclusive
        # no_ack consumers get no per-consumer limit (RabbitMQ ignores prefetch for them).
        self.prefetch = 0 if no_ack else prefetch
        self.unacked = 0
        self.priority = priority
        self.arguments = arguments
        self.blocked = False
        self.active = True

    def has_credit(self) -> bool:
        return self.prefetch == 0 or self.unacked < self.prefetch


class QueueStats:
    """Counters behind the management API's message_stats."""

    __slots__ = (
        "publish",
        "deliver",
        "deliver_no_ack",
        "get",
        "get_no_ack",
        "get_empty",
        "ack",
        "redeliver",
    )

    def __init__(self) -> None:
        self.publish = 0
        self.deliver = 0
        self.deliver_no_ack = 0
        self.get = 0
        self.get_no_ack = 0
        self.get_empty = 0
        self.ack = 0
        self.redeliver = 0


class Queue:
    """A classic queue; `QuorumQueue` changes what a return does and adds x-delivery-count."""

    queue_type = "classic"

    def __init__(
        self,
        vhost: VirtualHost,
        name: str,
        durable: bool,
        auto_delete: bool,
        exclusive_owner: object | None,
        arguments: Table,
    ) -> None:
        self.vhost = vhost
        self.name = name
        self.durable = durable
        self.auto_delete = auto_delete
        self.exclusive_owner = exclusive_owner
        self.arguments = arguments
        self.ready: deque[Entry] = deque()
        self.ready_bytes = 0
        self.unacked = 0
        self.next_seq = 1
        self.rings: dict[int, deque[Consumer]] = {0: deque()}
        self.priorities: list[int] = [0]
        self.consumers: dict[tuple[int, str], Consumer] = {}
        self.ever_consumed = False
        self.deleted = False
        self.stats = QueueStats()
        self.created_at = time.time()
        self.store: EntryStore | None = None

    # ------------------------------------------------------------------ messages

    @property
    def message_count(self) -> int:
        return len(self.ready)

    def publish(self, message: Message) -> Entry:
        entry = Entry(self.next_seq, message)
        self.next_seq += 1
        self.stats.publish += 1
        if self.store is not None:
            self.store.enqueued(self, entry)
        self.ready.append(entry)
        self.ready_bytes += len(message.body)
        self.dispatch()
        return entry

    def restore(self, entry: Entry) -> None:
        """Put back a message recovered from the durable store, in stored order."""
        self.next_seq = max(self.next_seq, entry.seq + 1)
        self.ready.append(entry)
        self.ready_bytes += len(entry.message.body)

    def take(self) -> Entry | None:
        """The head message, for basic.get."""
        if not self.ready:
            return None
        entry = self.ready.popleft()
        self.ready_bytes -= len(entry.message.body)
        if entry.store_id is not None and self.store is not None:
            self.store.delivered(entry)
        return entry

    def purge(self) -> int:
        count = len(self.ready)
        released = list(self.ready)
        self.ready.clear()
        self.ready_bytes = 0
        for entry in released:
            self.release(entry)
        return count

    def release(self, entry: Entry) -> None:
        """A message leaves this queue for good (acked, dropped, purged, or sent with no_ack)."""
        if self.store is not None:
            self.store.released(entry)

    def settled(self, entry: Entry) -> None:
        """An ack-required delivery was acked."""
        self.unacked -= 1
        self.stats.ack += 1
        self.release(entry)

    def discarded(self, entry: Entry) -> None:
        """An ack-required delivery was nacked or rejected without requeue."""
        self.unacked -= 1
        self.release(entry)

    def requeue(self, entries: Iterable[Entry], *, to_back: bool = False) -> None:
        """Unacked deliveries come back to their original place, marked redelivered.

        Classic queues treat every way back alike; `to_back` matters to quorum queues only.
        """
        returned = sorted(entries, key=lambda e: e.seq)
        if not self._coming_back(returned):
            return
        for entry in returned:
            entry.redelivered = True
            entry.delivery_count += 1
            self.ready_bytes += len(entry.message.body)
        self._merge_returned(returned)
        self.dispatch()

    def _coming_back(self, returned: list[Entry]) -> bool:
        """Unacked deliveries leave the channel; False when there is no queue to return to."""
        self.unacked -= len(returned)
        if self.deleted:
            for entry in returned:
                self.release(entry)
            return False
        return bool(returned)

    def _merge_returned(self, returned: list[Entry]) -> None:
        # Returned messages are older than nearly everything ready, so merge only the prefix of
        # the ready deque that is older than the newest returned one.
        ready = self.ready
        newest = returned[-1].seq
        prefix: list[Entry] = []
        while ready and ready[0].seq < newest:
            prefix.append(ready.popleft())
        merged = sorted(prefix + returned, key=lambda e: e.seq) if prefix else returned
        ready.extendleft(reversed(merged))

    def _popped(self) -> None:
        """The head of `ready` was taken (quorum queues keep count of their returns)."""

    def headers_for(self, entry: Entry, *, for_get: bool) -> bytes | None:
        """Replacement properties for a delivery, or None to send the publisher's own."""
        return None

    # ------------------------------------------------------------------ consumers

    @property
    def consumer_count(self) -> int:
        return len(self.consumers)

    def has_exclusive_consumer(self) -> bool:
        return any(c.exclusive for c in self.consumers.values())

    def add_consumer(self, consumer: Consumer) -> None:
        self.consumers[(id(consumer.owner), consumer.tag)] = consumer
        self.ever_consumed = True
        ring = self.rings.get(consumer.priority)
        if ring is None:
            ring = self.rings[consumer.priority] = deque()
            self.priorities = sorted(self.rings, reverse=True)
        ring.append(consumer)
        self.dispatch()

    def remove_consumer(self, consumer: Consumer) -> None:
        """Detach a consumer; its unacked deliveries stay with its channel."""
        if self.consumers.pop((id(consumer.owner), consumer.tag), None) is None:
            return
        consumer.active = False
        if not consumer.blocked:
            self.rings[consumer.priority].remove(consumer)
        consumer.blocked = False

    def unblock(self, consumer: Consumer) -> None:
        """Credit came back: the consumer rejoins its ring at the tail."""
        if consumer.blocked and consumer.active:
            consumer.blocked = False
            self.rings[consumer.priority].append(consumer)
            self.dispatch()

    def _next_consumer(self) -> Consumer | None:
        for priority in self.priorities:
            ring = self.rings[priority]
            while ring:
                consumer = ring[0]
                if consumer.owner.can_send(consumer):
                    ring.rotate(-1)
                    return consumer
                ring.popleft()
                consumer.blocked = True
        return None

    def dispatch(self) -> None:
        ready = self.ready
        while ready:
            consumer = self._next_consumer()
            if consumer is None:
                return
            entry = ready.popleft()
            self._popped()
            self.ready_bytes -= len(entry.message.body)
            if entry.store_id is not None and self.store is not None and not consumer.no_ack:
                self.store.delivered(entry)
            if entry.redelivered:
                self.stats.redeliver += 1
            if consumer.no_ack:
                self.stats.deliver_no_ack += 1
            else:
                self.stats.deliver += 1
                self.unacked += 1
            consumer.owner.deliver(consumer, self, entry)

    def cancel_all_consumers(self) -> None:
        for consumer in list(self.consumers.values()):
            self.remove_consumer(consumer)
            consumer.owner.cancelled_by_broker(consumer)


class QuorumQueue(Queue):
    """Quorum queue semantics as RabbitMQ 3.10 shows them to a client.

    Two ways back: a *return* (channel or connection gone, consumer cancelled by a crash) joins
    a returns FIFO served before anything never delivered; a nack/reject with requeue or a
    basic.recover sends the message to the back of the queue. Both add to x-delivery-count.
    The returns sit at the head of `ready`, `returns` of them.
    """

    queue_type = "quorum"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.returns = 0
        # rabbit_fifo counts each unsettled basic.get as a consumer, and a cancelled consumer
        # for as long as it still holds unacked messages.
        self.checked_out_gets = 0
        self.cancelled_holding: set[Consumer] = set()

    @property
    def consumer_count(self) -> int:
        holding = self.cancelled_holding
        if holding:
            holding.difference_update([c for c in holding if c.unacked == 0])
        return len(self.consumers) + self.checked_out_gets + len(holding)

    def remove_consumer(self, consumer: Consumer) -> None:
        super().remove_consumer(consumer)
        if consumer.unacked:
            self.cancelled_holding.add(consumer)

    def _popped(self) -> None:
        if self.returns:
            self.returns -= 1

    def take(self) -> Entry | None:
        entry = super().take()
        if entry is not None:
            self._popped()
        return entry

    def purge(self) -> int:
        self.returns = 0
        return super().purge()

    def requeue(self, entries: Iterable[Entry], *, to_back: bool = False) -> None:
        returned = list(entries)
        if not self._coming_back(returned):
            return
        ready = self.ready
        for entry in returned:
            entry.redelivered = True
            entry.delivery_count += 1
            self.ready_bytes += len(entry.message.body)
            if to_back:
                entry.seq = self.next_seq
                self.next_seq += 1
                ready.append(entry)
            else:
                ready.insert(self.returns, entry)
                self.returns += 1
            if entry.store_id is not None and self.store is not None:
                self.store.returned(entry)
        self.dispatch()

    def headers_for(self, entry: Entry, *, for_get: bool) -> bytes | None:
        if entry.delivery_count == 0 and not for_get:
            return None
        return with_header(
            entry.message.properties, "x-delivery-count", Typed("long", entry.delivery_count)
        )
