"""Queues: ready messages in order, consumers in a round-robin ring, and credit-based dispatch.

Dispatch follows RabbitMQ's queue process: a delivery goes to the consumer at the head of the
highest-priority ring, which then moves to the tail. A consumer without credit (prefetch used up,
channel limit reached, flow off, or its socket backed up) leaves the ring, and rejoins at the tail
once credit returns. That is what turns round-robin into fair dispatch with prefetch 1.
"""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from tui_queue.broker.codec import Table, Typed
from tui_queue.broker.deadletter import EXPIRED, MAXLEN, REJECTED
from tui_queue.broker.expiry import Lease, Timer, loop_time
from tui_queue.broker.message import Entry, Message, with_header
from tui_queue.broker.queue_options import (
    DROP_HEAD,
    REJECT_PUBLISH,
    REJECT_PUBLISH_DLX,
    read_queue_options,
)

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
    """A classic queue; `QuorumQueue` changes what a return does and adds x-delivery-count.

    Queue arguments with behaviour (TTLs, length limits, dead-lettering, x-expires, single
    active consumer) live in `options`, read at declare time. A queue without them takes the
    plain paths below, which test nothing more than `options is None`.
    """

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
        self.options = options = read_queue_options(arguments, self.queue_type)
        # Messages may carry deadlines: x-message-ttl says so up front, and the first message
        # with an expiration property turns it on for good (per-message TTLs reach any queue).
        self.expiring = options is not None and options.message_ttl is not None
        self._expiry_timer: Timer | None = None
        self.single_active = options is not None and options.single_active_consumer
        self.active_consumer: Consumer | None = None
        self.lease: Lease | None = None
        if options is not None and options.expires is not None:
            self.lease = Lease(options.expires, self._in_use, self._lease_over)

    # ------------------------------------------------------------------ messages

    @property
    def message_count(self) -> int:
        return len(self.ready)

    def publish(self, message: Message, publisher: object = None) -> Entry | None:
        """Enqueue (or hand straight to a consumer); None when the queue refuses the message
        (x-overflow reject-publish), which the publisher hears as a basic.nack."""
        if self.options is not None or message.ttl is not None:
            return self._publish_with_options(message, publisher)
        entry = Entry(self.next_seq, message)
        self.next_seq += 1
        self.stats.publish += 1
        if self.store is not None:
            self.store.enqueued(self, entry)
        self.ready.append(entry)
        self.ready_bytes += len(message.body)
        self.dispatch()
        return entry

    def _publish_with_options(self, message: Message, publisher: object) -> Entry | None:
        options = self.options
        if (
            options is not None
            and options.limited
            and options.overflow != DROP_HEAD
            and self._refuses(message, publisher)
        ):
            if options.overflow == REJECT_PUBLISH_DLX:
                self._dead_letter(message, MAXLEN)
            return None
        entry = Entry(self.next_seq, message)
        self.next_seq += 1
        self.stats.publish += 1
        ttl = self._ttl_of(message)
        if ttl is not None:
            entry.expires_at = loop_time() + self._ttl_seconds(ttl)
            self.expiring = True
        if self.store is not None:
            self.store.enqueued(self, entry)
        self.ready.append(entry)
        self.ready_bytes += len(message.body)
        self.dispatch()
        if options is not None:
            if (
                options.message_ttl == 0
                and options.dead_letter_exchange is None
                and self._retract(entry)
            ):
                # rabbit_amqqueue_process: with x-message-ttl 0 and nowhere to dead-letter, a
                # message no consumer takes at once is discarded rather than enqueued.
                self.ready_bytes -= len(message.body)
                self.release(entry)
            if options.limited:
                self._after_enqueue()
        if self.expiring:
            self._drop_expired()
        return entry

    def _ttl_of(self, message: Message) -> int | None:
        """The message's TTL here: the smaller of x-message-ttl and its expiration property."""
        queue_ttl = None if self.options is None else self.options.message_ttl
        if message.ttl is None:
            return queue_ttl
        return message.ttl if queue_ttl is None else min(queue_ttl, message.ttl)

    @staticmethod
    def _ttl_seconds(ttl: int) -> float:
        return ttl / 1000

    def _refuses(self, message: Message, publisher: object) -> bool:
        """x-overflow reject-publish: would this message take the queue over its limit?"""
        options = self.options
        assert options is not None
        return (options.max_length is not None and len(self.ready) + 1 > options.max_length) or (
            options.max_bytes is not None
            and self.ready_bytes + len(message.body) > options.max_bytes
        )

    def _after_enqueue(self) -> None:
        """A message joined a queue with a length limit: drop-head makes room at the head."""
        options = self.options
        assert options is not None
        if options.overflow == DROP_HEAD:
            self._drop_over_limit()

    def _over_limit(self) -> bool:
        options = self.options
        assert options is not None
        return (options.max_length is not None and len(self.ready) > options.max_length) or (
            options.max_bytes is not None and self.ready_bytes > options.max_bytes
        )

    def _drop_over_limit(self) -> None:
        # Only ready messages count: unacked ones are not in `ready`.
        while self.ready and self._over_limit():
            self._drop_head(MAXLEN)

    def _retract(self, entry: Entry) -> bool:
        """Take back a message just enqueued if no consumer took it (it is the newest)."""
        ready = self.ready
        if ready and ready[-1] is entry:
            ready.pop()
            return True
        return False

    def _drop_head(self, reason: str) -> None:
        entry = self.ready.popleft()
        self.ready_bytes -= len(entry.message.body)
        self._popped()
        self._dead_letter(entry.message, reason)
        self.release(entry)

    def _dead_letter(self, message: Message, reason: str) -> None:
        if self.options is not None and self.options.dead_letter_exchange is not None:
            self.vhost.dead_letter(self, message, reason)

    def _drop_expired(self, now: float | None = None) -> None:
        """Drop (or dead-letter) expired messages at the head, as RabbitMQ does: a message
        behind a live one waits for it to leave. Then wait for the new head's deadline."""
        ready = self.ready
        if not ready:
            return
        if now is None:
            now = loop_time()
        while ready:
            expires_at = ready[0].expires_at
            if expires_at is None:
                return
            if expires_at > now:
                timer = self._expiry_timer
                if timer is None:
                    timer = self._expiry_timer = Timer(self._expiry_due)
                # RabbitMQ moves its timer only for a deadline more than a millisecond sooner.
                if timer.when is None or expires_at + 0.001 < timer.when:
                    timer.set(expires_at)
                return
            self._drop_head(EXPIRED)

    def _expiry_due(self, when: float) -> None:
        if not self.deleted:
            # The loop may run a timer a hair before its deadline; it is due all the same.
            self._drop_expired(max(loop_time(), when))

    def restore(self, entry: Entry) -> None:
        """Put back a message recovered from the durable store, in stored order."""
        self.next_seq = max(self.next_seq, entry.seq + 1)
        self.ready.append(entry)
        self.ready_bytes += len(entry.message.body)
        if entry.expires_at is not None:
            self.expiring = True

    def recovered(self) -> None:
        """Everything was read back from the store: apply the limits and deadlines again."""
        options = self.options
        if options is not None and options.limited and options.overflow == DROP_HEAD:
            self._drop_over_limit()
        if self.expiring:
            self._drop_expired()
        self.started()

    def take(self) -> Entry | None:
        """The head message, for basic.get."""
        if self.lease is not None:
            self._renew_if_unused()
        if not self.ready:
            return None
        entry = self.ready.popleft()
        self.ready_bytes -= len(entry.message.body)
        self._popped()
        if entry.store_id is not None and self.store is not None:
            self.store.delivered(entry)
        if self.expiring:
            # The count in get-ok comes after the expired messages behind it are gone.
            self._drop_expired()
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
        if not self.deleted:
            self._dead_letter(entry.message, REJECTED)
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
        self._returned()

    def _returned(self) -> None:
        """Messages came back (rabbit_amqqueue_process:requeue_and_run): a length limit may
        drop some, the oldest first, and those that expired meanwhile go; then dispatch."""
        options = self.options
        if options is not None and options.limited and options.overflow == DROP_HEAD:
            self._drop_over_limit()
        if self.expiring:
            self._drop_expired()
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

    # ------------------------------------------------------------------ x-expires

    def started(self) -> None:
        """The queue exists from now (declared, or read back from the store): its x-expires
        lease starts."""
        if self.lease is not None:
            self.lease.renew()

    def declared(self) -> None:
        """queue.declare (passive, or a redeclaration) answered for this existing queue.

        A classic queue counts the stat behind declare-ok as use and renews its x-expires lease
        (ensure_expiry_timer); a quorum queue's stat is a query and renews nothing.
        """
        if self.lease is not None:
            self._renew_if_unused()

    def _in_use(self) -> bool:
        return bool(self.consumers)

    def _renew_if_unused(self) -> None:
        if self.lease is not None and not self.deleted and not self._in_use():
            self.lease.renew()

    def _lease_over(self) -> None:
        self.vhost.remove_queue(self)

    def stop_timers(self) -> None:
        """The queue is gone: nothing of it may fire any more."""
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        if self.lease is not None:
            self.lease.cancel()

    # ------------------------------------------------------------------ consumers

    @property
    def consumer_count(self) -> int:
        """The count declare-ok reports."""
        return len(self.consumers)

    @property
    def listed_consumer_count(self) -> int:
        """The count the management API reports (from the queue's own metrics)."""
        return self.consumer_count

    def has_exclusive_consumer(self) -> bool:
        return any(c.exclusive for c in self.consumers.values())

    def add_consumer(self, consumer: Consumer) -> None:
        self.consumers[(id(consumer.owner), consumer.tag)] = consumer
        self.ever_consumed = True
        if self.single_active and self.active_consumer is None:
            self.active_consumer = consumer
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
        if consumer is self.active_consumer:
            # Single active consumer: the next one in line takes over at once.
            self.active_consumer = self._next_active_consumer()
            if self.active_consumer is not None and not self.deleted:
                self.dispatch()
        if self.lease is not None:
            self._renew_if_unused()

    def _next_active_consumer(self) -> Consumer | None:
        """Classic queues hand over to the highest-priority consumer, the earliest first."""
        best: Consumer | None = None
        for consumer in self.consumers.values():
            if best is None or consumer.priority > best.priority:
                best = consumer
        return best

    def unblock(self, consumer: Consumer) -> None:
        """Credit came back: the consumer rejoins its ring at the tail."""
        if consumer.blocked and consumer.active:
            consumer.blocked = False
            self.rings[consumer.priority].append(consumer)
            self.dispatch()

    def _next_consumer(self) -> Consumer | None:
        if self.single_active:
            return self._single_active_consumer()
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

    def _single_active_consumer(self) -> Consumer | None:
        """Only the active consumer gets messages; the others wait even with credit."""
        consumer = self.active_consumer
        if consumer is None or consumer.blocked:
            return None
        if consumer.owner.can_send(consumer):
            return consumer
        self.rings[consumer.priority].remove(consumer)
        consumer.blocked = True
        return None

    def dispatch(self) -> None:
        ready = self.ready
        while ready:
            consumer = self._next_consumer()
            if consumer is None:
                return
            entry = ready.popleft()
            self.ready_bytes -= len(entry.message.body)
            self._popped()
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
            if self.expiring:
                # As rabbit_amqqueue_process:fetch: expired messages go once the head has left
                # (a consumer waiting when a message arrives gets it, whatever its TTL).
                self._drop_expired()

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
        # x-overflow reject-publish: rabbit_fifo blocks every publisher (channel) it knows once
        # an enqueue takes it over the limit, and one that first shows up while it is over.
        self._enqueuers: weakref.WeakSet[Any] = weakref.WeakSet()
        self._blocked: weakref.WeakSet[Any] = weakref.WeakSet()
        # Whether `_blocked` may hold anyone: one cheap test for every message taken.
        self._blocking = False

    @property
    def consumer_count(self) -> int:
        # With a single active consumer, declare-ok leaves out the waiting ones (rabbit_fifo
        # keeps them apart from its consumers); the management API counts them.
        return self._checkouts(waiting=not self.single_active)

    @property
    def listed_consumer_count(self) -> int:
        return self._checkouts(waiting=True)

    def _checkouts(self, *, waiting: bool) -> int:
        holding = self.cancelled_holding
        if holding:
            holding.difference_update([c for c in holding if c.unacked == 0])
        live = len(self.consumers) if waiting else int(self.active_consumer is not None)
        return live + self.checked_out_gets + len(holding)

    def remove_consumer(self, consumer: Consumer) -> None:
        super().remove_consumer(consumer)
        if consumer.unacked:
            self.cancelled_holding.add(consumer)

    def _next_active_consumer(self) -> Consumer | None:
        # rabbit_fifo activates the longest waiting consumer (no priorities in 3.10).
        return next(iter(self.consumers.values()), None)

    def _in_use(self) -> bool:
        return self.consumer_count > 0

    def checkout_ended(self) -> None:
        """An unsettled basic.get, or a cancelled consumer's last message, was settled: the
        queue may have become unused (rabbit_fifo sets last_active then)."""
        if self.lease is not None:
            self._renew_if_unused()

    def declared(self) -> None:
        """A quorum queue's stat is a query: it does not renew the x-expires lease."""

    @staticmethod
    def _ttl_seconds(ttl: int) -> float:
        # rabbit_fifo stores a TTL of 0 as "now + 1 ms".
        return max(ttl, 1) / 1000

    def _retract(self, entry: Entry) -> bool:
        # rabbit_fifo enqueues even with x-message-ttl 0; the message expires a moment later.
        return False

    def _refuses(self, message: Message, publisher: object) -> bool:
        if publisher is None:
            return False  # dead-lettered copies are not enqueuers: never refused
        if publisher not in self._enqueuers:
            self._enqueuers.add(publisher)
            if self._over_limit():
                self._blocked.add(publisher)
                self._blocking = True
        return publisher in self._blocked

    def _after_enqueue(self) -> None:
        options = self.options
        assert options is not None
        if options.overflow == REJECT_PUBLISH:
            if self._over_limit():
                # The message that went over was accepted; what follows is not.
                for publisher in self._enqueuers:
                    self._blocked.add(publisher)
                self._blocking = True
        else:
            self._drop_over_limit()

    def _below_soft_limit(self) -> bool:
        """rabbit_fifo unblocks publishers at 80% of the limit."""
        options = self.options
        assert options is not None
        return (
            options.max_length is None or len(self.ready) <= int(options.max_length * 0.8)
        ) and (options.max_bytes is None or self.ready_bytes <= int(options.max_bytes * 0.8))

    def _popped(self) -> None:
        if self.returns:
            self.returns -= 1
        if self._blocking and self._below_soft_limit():
            self._unblock_publishers()

    def purge(self) -> int:
        self.returns = 0
        count = super().purge()
        self._unblock_publishers()
        return count

    def _unblock_publishers(self) -> None:
        self._blocked = weakref.WeakSet()
        self._blocking = False

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
        self._returned()

    def headers_for(self, entry: Entry, *, for_get: bool) -> bytes | None:
        if entry.delivery_count == 0 and not for_get:
            return None
        return with_header(
            entry.message.properties, "x-delivery-count", Typed("long", entry.delivery_count)
        )
