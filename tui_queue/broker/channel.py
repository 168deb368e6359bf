"""One AMQP channel: its consumers, unacked deliveries, prefetch limits, confirms and transactions.

The channel turns methods into calls on the virtual host and queues; errors come back as
AMQPError and the connection closes the channel (or itself) with them.
"""

from __future__ import annotations

import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pamqp import commands as cmd

from tui_queue.broker.codec import (
    decode_str,
    encode_method,
    encode_shortstr,
    encode_str,
    method_ids,
)
from tui_queue.broker.errors import (
    AMQPError,
    access_refused,
    not_allowed,
    not_found,
    not_implemented,
    precondition_failed,
)
from tui_queue.broker.message import (
    Entry,
    Message,
    basic_properties,
    expiration_problem,
    is_persistent,
)
from tui_queue.broker.queues import Consumer, Queue, QuorumQueue
from tui_queue.broker.vhost import INTEGER_TYPES, server_generated_name

if TYPE_CHECKING:
    from tui_queue.broker.connection import Connection

_DELIVER_HEAD = struct.pack(">HH", 60, 60)
_GET_OK_HEAD = struct.pack(">HH", 60, 71)
_U64_BIT = struct.Struct(">QB")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")

PUBLISH_IDS = (60, 40)
# Property flags of delivery_mode, expiration and user_id: the ones a publish is checked for.
_CHECKED_PROPERTIES = 0x1000 | 0x0100 | 0x0010


class Delivery:
    """An ack-required delivery waiting for its ack."""

    __slots__ = ("queue", "entry", "consumer", "sent_at")

    def __init__(
        self, queue: Queue, entry: Entry, consumer: Consumer | None, sent_at: float
    ) -> None:
        self.queue = queue
        self.entry = entry
        self.consumer = consumer
        self.sent_at = sent_at


class PendingPublish:
    """A basic.publish whose content header and body frames are still arriving."""

    __slots__ = (
        "exchange",
        "routing_key",
        "mandatory",
        "immediate",
        "properties",
        "remaining",
        "parts",
        "size",
    )

    def __init__(self, exchange: str, routing_key: str, mandatory: bool, immediate: bool) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.mandatory = mandatory
        self.immediate = immediate
        self.properties = b""
        self.remaining = -1  # -1: waiting for the content header
        self.parts: list[bytes] = []
        self.size = 0


class Channel:
    def __init__(self, connection: Connection, number: int) -> None:
        self.connection = connection
        self.number = number
        self.vhost = connection.vhost
        self.closing = False
        self.flow_active = True
        self.next_tag = 1
        self.unacked: OrderedDict[int, Delivery] = OrderedDict()
        # Deliveries to consumers that count against the channel-wide (global) limit.
        self.limited_unacked = 0
        self.consumer_prefetch = 0
        self.global_prefetch = 0
        self.consumers: dict[str, Consumer] = {}
        self.last_queue = ""
        self.pending: PendingPublish | None = None
        self.confirm_mode = False
        self.publish_seq = 0
        self.confirmed: list[int] = []
        self.unconfirmed: set[int] = set()
        self.tx_mode = False
        # Publishes of the open transaction, routed already and delivered at commit.
        self.tx_actions: list[Callable[[], None]] = []
        # Acks, nacks and rejects of the open transaction: (outcome, (tag, delivery) pairs),
        # taken out of `unacked` on arrival and settled at commit.
        self.tx_settles: list[tuple[str, list[tuple[int, Delivery]]]] = []
        self._handlers: dict[type, Callable[[Any], None]] = {
            cmd.Channel.Flow: self._channel_flow,
            cmd.Channel.FlowOk: self._ignore,
            cmd.Exchange.Declare: self._exchange_declare,
            cmd.Exchange.Delete: self._exchange_delete,
            cmd.Exchange.Bind: self._exchange_bind,
            cmd.Exchange.Unbind: self._exchange_unbind,
            cmd.Queue.Declare: self._queue_declare,
            cmd.Queue.Bind: self._queue_bind,
            cmd.Queue.Unbind: self._queue_unbind,
            cmd.Queue.Purge: self._queue_purge,
            cmd.Queue.Delete: self._queue_delete,
            cmd.Basic.Qos: self._basic_qos,
            cmd.Basic.Consume: self._basic_consume,
            cmd.Basic.Cancel: self._basic_cancel,
            cmd.Basic.Get: self._basic_get,
            cmd.Basic.Ack: lambda m: self.ack(m.delivery_tag, m.multiple),
            cmd.Basic.Nack: lambda m: self.nack(m.delivery_tag, m.multiple, m.requeue),
            cmd.Basic.Reject: lambda m: self.reject(m.delivery_tag, m.requeue),
            cmd.Basic.Recover: self._basic_recover,
            cmd.Basic.RecoverAsync: self._basic_recover,
            cmd.Confirm.Select: self._confirm_select,
            cmd.Tx.Select: self._tx_select,
            cmd.Tx.Commit: self._tx_commit,
            cmd.Tx.Rollback: self._tx_rollback,
        }

    # ------------------------------------------------------------------ output

    def send_method(self, cls: type, **values: Any) -> None:
        self.connection.send(encode_method(cls, self.number, **values))

    def send_method_when_stored(self, cls: type, **values: Any) -> None:
        """Reply once the change is on disk, as RabbitMQ replies to a durable declare."""
        self.connection.broker.after_sync(
            lambda: None if self.closing else self.send_method(cls, **values)
        )

    def _ignore(self, method: Any) -> None:
        pass

    # ------------------------------------------------------------------ dispatch

    def handle_method(self, method: Any) -> None:
        handler = self._handlers.get(type(method))
        if handler is None:
            raise AMQPError(503, "unimplemented method").at(*method_ids(type(method)))
        try:
            handler(method)
        except AMQPError as error:
            raise error.at(*method_ids(type(method))) from None

    def queue_name(self, name: str) -> str:
        """The empty name means the queue this channel declared last."""
        if name:
            return name
        if not self.last_queue:
            raise not_found("no previously declared queue")
        return self.last_queue

    # ------------------------------------------------------------------ exchanges

    def _exchange_declare(self, m: Any) -> None:
        self.vhost.declare_exchange(
            m.exchange,
            m.exchange_type,
            passive=m.passive,
            durable=m.durable,
            auto_delete=m.auto_delete,
            internal=m.internal,
            arguments=m.arguments,
        )
        if not m.nowait:
            self.send_method_when_stored(cmd.Exchange.DeclareOk)

    def _exchange_delete(self, m: Any) -> None:
        self.vhost.delete_exchange(m.exchange, if_unused=m.if_unused)
        if not m.nowait:
            self.send_method_when_stored(cmd.Exchange.DeleteOk)

    def _exchange_bind(self, m: Any) -> None:
        self.vhost.bind(
            m.source, m.destination, "exchange", m.routing_key, m.arguments, self.connection
        )
        if not m.nowait:
            self.send_method_when_stored(cmd.Exchange.BindOk)

    def _exchange_unbind(self, m: Any) -> None:
        self.vhost.unbind(
            m.source, m.destination, "exchange", m.routing_key, m.arguments, self.connection
        )
        if not m.nowait:
            self.send_method_when_stored(cmd.Exchange.UnbindOk)

    # ------------------------------------------------------------------ queues

    def _queue_declare(self, m: Any) -> None:
        queue = self.vhost.declare_queue(
            m.queue,
            passive=m.passive,
            durable=m.durable,
            exclusive=m.exclusive,
            auto_delete=m.auto_delete,
            arguments=m.arguments,
            owner=self.connection,
        )
        self.last_queue = queue.name
        if not m.nowait:
            self.send_method_when_stored(
                cmd.Queue.DeclareOk,
                queue=queue.name,
                message_count=queue.message_count,
                consumer_count=queue.consumer_count,
            )

    def _queue_bind(self, m: Any) -> None:
        routing_key = m.routing_key
        if not routing_key and not m.queue:
            routing_key = self.last_queue
        self.vhost.bind(
            m.exchange,
            self.queue_name(m.queue),
            "queue",
            routing_key,
            m.arguments,
            self.connection,
        )
        if not m.nowait:
            self.send_method_when_stored(cmd.Queue.BindOk)

    def _queue_unbind(self, m: Any) -> None:
        routing_key = m.routing_key
        if not routing_key and not m.queue:
            routing_key = self.last_queue
        self.vhost.unbind(
            m.exchange, self.queue_name(m.queue), "queue", routing_key, m.arguments, self.connection
        )
        self.send_method_when_stored(cmd.Queue.UnbindOk)

    def _queue_purge(self, m: Any) -> None:
        count = self.vhost.purge_queue(self.queue_name(m.queue), self.connection)
        if not m.nowait:
            self.send_method(cmd.Queue.PurgeOk, message_count=count)

    def _queue_delete(self, m: Any) -> None:
        count = self.vhost.delete_queue(
            self.queue_name(m.queue),
            if_unused=m.if_unused,
            if_empty=m.if_empty,
            owner=self.connection,
        )
        if not m.nowait:
            self.send_method_when_stored(cmd.Queue.DeleteOk, message_count=count)

    # ------------------------------------------------------------------ consuming

    def _basic_qos(self, m: Any) -> None:
        if m.prefetch_size != 0:
            raise not_implemented(f"prefetch_size!=0 ({m.prefetch_size})")
        if m.global_:
            self.global_prefetch = m.prefetch_count
            self._unblock_consumers(list(self.consumers.values()))
        else:
            # RabbitMQ: applies to consumers created from now on; existing ones keep theirs.
            self.consumer_prefetch = m.prefetch_count
        self.send_method(cmd.Basic.QosOk)

    def _basic_consume(self, m: Any) -> None:
        queue = self.vhost.lookup_queue(self.queue_name(m.queue), self.connection)
        tag = m.consumer_tag or server_generated_name("amq.ctag-")
        if tag in self.consumers:
            raise not_allowed(f"attempt to reuse consumer tag '{tag}'")
        if queue.has_exclusive_consumer() or (m.exclusive and queue.consumer_count):
            raise access_refused(f"{self.vhost.describe_queue(queue.name)} in exclusive use")
        if isinstance(queue, QuorumQueue) and self.global_prefetch:
            raise not_implemented(
                f"{self.vhost.describe_queue(queue.name)} does not support global qos"
            )
        priority = 0
        priority_arg = m.arguments.get("x-priority")
        if priority_arg is not None:
            if priority_arg.type not in INTEGER_TYPES:
                raise precondition_failed(
                    f"invalid arg 'x-priority' for {self.vhost.describe_queue(queue.name)}: "
                    f'"expected integer, got {priority_arg.type}"'
                )
            priority = priority_arg.value
        consumer = Consumer(
            tag,
            self,
            queue,
            no_ack=m.no_ack,
            exclusive=m.exclusive,
            prefetch=self.consumer_prefetch,
            priority=priority,
            arguments=m.arguments,
        )
        consumer.encoded_tag = encode_shortstr(tag)
        self.consumers[tag] = consumer
        if not m.nowait:
            self.send_method(cmd.Basic.ConsumeOk, consumer_tag=tag)
        queue.add_consumer(consumer)

    def _basic_cancel(self, m: Any) -> None:
        consumer = self.consumers.pop(m.consumer_tag, None)
        if consumer is not None:
            consumer.queue.remove_consumer(consumer)
        if not m.nowait:
            self.send_method(cmd.Basic.CancelOk, consumer_tag=m.consumer_tag)
        if consumer is not None:
            self.vhost.maybe_auto_delete(consumer.queue)

    def cancelled_by_broker(self, consumer: Consumer) -> None:
        """The queue went away under this consumer."""
        if self.consumers.pop(consumer.tag, None) is None or self.closing:
            return
        if self.connection.client_capability("consumer_cancel_notify"):
            # Sent on the next loop turn, so a queue.delete-ok on this connection goes first.
            self.connection.loop.call_soon(
                lambda: self.send_method(cmd.Basic.Cancel, consumer_tag=consumer.tag, nowait=True)
            )

    def can_send(self, consumer: Consumer) -> bool:
        if self.closing or not self.flow_active or self.connection.write_blocked:
            return False
        if consumer.no_ack:
            return True
        if consumer.prefetch and consumer.unacked >= consumer.prefetch:
            return False
        return not (self.global_prefetch and self.limited_unacked >= self.global_prefetch)

    def deliver(self, consumer: Consumer, queue: Queue, entry: Entry) -> None:
        tag = self.next_tag
        self.next_tag = tag + 1
        if consumer.no_ack:
            queue.release(entry)
        else:
            self.unacked[tag] = Delivery(queue, entry, consumer, time.monotonic())
            consumer.unacked += 1
            self.limited_unacked += 1
        message = entry.message
        method = b"".join(
            (
                _DELIVER_HEAD,
                consumer.encoded_tag,
                _U64_BIT.pack(tag, 1 if entry.redelivered else 0),
                encode_shortstr(message.exchange),
                encode_shortstr(message.routing_key),
            )
        )
        self.connection.send_content(
            self.number, method, message, queue.headers_for(entry, for_get=False)
        )

    def _basic_get(self, m: Any) -> None:
        queue = self.vhost.lookup_queue(self.queue_name(m.queue), self.connection)
        entry = queue.take()
        if entry is None:
            queue.stats.get_empty += 1
            self.send_method(cmd.Basic.GetEmpty)
            return
        tag = self.next_tag
        self.next_tag = tag + 1
        if entry.redelivered:
            queue.stats.redeliver += 1
        if m.no_ack:
            queue.stats.get_no_ack += 1
            queue.release(entry)
        else:
            queue.stats.get += 1
            queue.unacked += 1
            if isinstance(queue, QuorumQueue):
                queue.checked_out_gets += 1
            self.unacked[tag] = Delivery(queue, entry, None, time.monotonic())
        message = entry.message
        method = b"".join(
            (
                _GET_OK_HEAD,
                _U64_BIT.pack(tag, 1 if entry.redelivered else 0),
                encode_shortstr(message.exchange),
                encode_shortstr(message.routing_key),
                _U32.pack(queue.message_count),
            )
        )
        self.connection.send_content(
            self.number, method, message, queue.headers_for(entry, for_get=True)
        )

    # ------------------------------------------------------------------ acks

    def _take_deliveries(self, tag: int, multiple: bool) -> list[tuple[int, Delivery]]:
        """Remove and return (tag, delivery) for what an ack/nack settles, or raise 406."""
        unacked = self.unacked
        if multiple and tag == 0:
            taken = list(unacked.items())
            unacked.clear()
            return taken
        if tag not in unacked:
            raise precondition_failed(f"unknown delivery tag {tag}")
        if not multiple:
            return [(tag, unacked.pop(tag))]
        taken = []
        while unacked:
            first = next(iter(unacked))
            if first > tag:
                break
            taken.append(unacked.popitem(last=False))
        return taken

    def ack(self, tag: int, multiple: bool) -> None:
        self._settle_or_defer(self._take_deliveries(tag, multiple), "ack")

    def nack(self, tag: int, multiple: bool, requeue: bool) -> None:
        outcome = "requeue" if requeue else "drop"
        self._settle_or_defer(self._take_deliveries(tag, multiple), outcome)

    def reject(self, tag: int, requeue: bool) -> None:
        self.nack(tag, False, requeue)

    def _settle_or_defer(self, taken: list[tuple[int, Delivery]], outcome: str) -> None:
        if self.tx_mode:
            # RabbitMQ checks and takes the tags out when the ack arrives (so a second ack of a
            # tag fails at once) and settles them at commit; a rollback puts them back.
            self.tx_settles.append((outcome, taken))
            return
        self._settle([delivery for _, delivery in taken], outcome)

    def _restore_tx_settles(self) -> None:
        """Pending acks of a rolled back (or abandoned) transaction are unacked again."""
        settles, self.tx_settles = self.tx_settles, []
        if not settles:
            return
        restored = [pair for _, taken in settles for pair in taken]
        merged = sorted([*self.unacked.items(), *restored], key=lambda pair: pair[0])
        self.unacked.clear()
        self.unacked.update(merged)

    def _settle(self, deliveries: list[Delivery], outcome: str) -> None:
        touched: dict[int, Consumer] = {}
        requeue_by_queue: dict[int, tuple[Queue, list[Entry]]] = {}
        for delivery in deliveries:
            consumer = delivery.consumer
            if consumer is not None:
                consumer.unacked -= 1
                self.limited_unacked -= 1
                touched[id(consumer)] = consumer
            else:
                _get_settled(delivery.queue)
            if outcome == "ack":
                delivery.queue.settled(delivery.entry)
            elif outcome == "drop":
                delivery.queue.discarded(delivery.entry)
            else:
                requeue_by_queue.setdefault(id(delivery.queue), (delivery.queue, []))[1].append(
                    delivery.entry
                )
        for queue, entries in requeue_by_queue.values():
            queue.requeue(entries, to_back=True)
        if self.global_prefetch:
            self._unblock_consumers(list(self.consumers.values()))
        else:
            self._unblock_consumers(list(touched.values()))

    def _unblock_consumers(self, consumers: list[Consumer]) -> None:
        for consumer in consumers:
            if consumer.blocked and self.can_send(consumer):
                consumer.queue.unblock(consumer)

    def requeue_all(self, *, to_back: bool = False) -> None:
        """Every unacked delivery goes back to its queue (channel close, recover, timeout)."""
        deliveries = list(self.unacked.items())
        self.unacked.clear()
        if not to_back:
            # A quorum queue takes back a closed channel's messages consumer by consumer, in
            # the order of its consumer ids ({tag, channel}; an unsettled basic.get is its own
            # consumer, tagged with the delivery tag as text), each one's in checkout order.
            # rabbit_fifo walks a small map (up to 32 ids), which is sorted by key; so returns
            # of gets with tags 1..10 come back as 1, 10, 2, 3, ... (classic queues re-sort).
            deliveries.sort(key=_return_order)
        by_queue: dict[int, tuple[Queue, list[Entry]]] = {}
        for _tag, delivery in deliveries:
            if delivery.consumer is not None:
                delivery.consumer.unacked -= 1
                self.limited_unacked -= 1
            else:
                _get_settled(delivery.queue)
            by_queue.setdefault(id(delivery.queue), (delivery.queue, []))[1].append(delivery.entry)
        for queue, entries in by_queue.values():
            queue.requeue(entries, to_back=to_back)

    def _basic_recover(self, m: Any) -> None:
        if not m.requeue:
            raise not_implemented("requeue=false")
        # Quorum queues send recovered messages to the back, like a nack.
        self.requeue_all(to_back=True)
        self._unblock_consumers(list(self.consumers.values()))
        if isinstance(m, cmd.Basic.Recover):
            self.send_method(cmd.Basic.RecoverOk)

    # ------------------------------------------------------------------ publishing

    def start_publish(
        self, exchange: str, routing_key: str, mandatory: bool, immediate: bool
    ) -> None:
        self.pending = PendingPublish(exchange, routing_key, mandatory, immediate)

    def content_header(self, body_size: int, properties: bytes) -> bool:
        """Returns True when the message is complete (an empty body sends no body frame)."""
        pending = self.pending
        assert pending is not None
        pending.properties = properties
        pending.remaining = body_size
        pending.size = body_size
        if body_size == 0:
            self._finish_publish()
            return True
        return False

    def content_body(self, fragment: bytes) -> bool:
        pending = self.pending
        assert pending is not None
        # An oversized message is refused once it has all arrived, as RabbitMQ does; its bytes
        # are counted, never kept.
        if pending.size <= self.connection.config.max_message_size:
            pending.parts.append(fragment)
        pending.remaining -= len(fragment)
        if pending.remaining == 0:
            self._finish_publish()
            return True
        return False

    def _finish_publish(self) -> None:
        pending = self.pending
        assert pending is not None
        self.pending = None
        if pending.immediate:
            # RabbitMQ refuses immediate=true only once the content has arrived.
            raise not_implemented("immediate=true").at(*PUBLISH_IDS)
        limit = self.connection.config.max_message_size
        if pending.size > limit:
            raise precondition_failed(
                f"message size {pending.size} is larger than configured max size {limit}"
            ).at(*PUBLISH_IDS)
        parts = pending.parts
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        exchange = self.vhost.exchanges.get(pending.exchange)
        if exchange is None:
            raise self.vhost.exchange_not_found(pending.exchange).at(*PUBLISH_IDS)
        if exchange.internal:
            raise access_refused(
                f"cannot publish to internal {self.vhost.describe_exchange(exchange.name)}"
            ).at(*PUBLISH_IDS)
        problem = self._property_problem(pending.properties)
        if problem is not None:
            raise precondition_failed(problem).at(*PUBLISH_IDS)
        message = Message(
            pending.exchange,
            pending.routing_key,
            pending.properties,
            body,
            is_persistent(pending.properties),
        )
        seq = 0
        if self.confirm_mode:
            self.publish_seq += 1
            seq = self.publish_seq
        queues = self.vhost.route(exchange, message.routing_key, message.properties)
        if self.tx_mode:
            # RabbitMQ routes a transactional publish now and delivers it at commit, looking
            # its queues up by name again then (a queue deleted meanwhile is skipped).
            names = [queue.name for queue in queues]
            self.tx_actions.append(
                lambda: self._deliver(message, self._queues_named(names), pending.mandatory, 0)
            )
        else:
            self._deliver(message, queues, pending.mandatory, seq)

    def _property_problem(self, raw: bytes) -> str | None:
        """What rabbit_channel refuses in a publish's properties, in its order: a user_id that
        is not the connection's user, an unreadable expiration, a delivery_mode not 1 or 2."""
        if len(raw) >= 2 and not int.from_bytes(raw[:2], "big") & _CHECKED_PROPERTIES:
            return None
        try:
            properties = basic_properties(raw, with_headers=False)
        except ValueError:
            return None  # unreadable properties pass through as bytes, as before
        user_id = properties.get("user_id")
        if user_id is not None and user_id != encode_str(self.connection.user):
            return (
                f"user_id property set to '{decode_str(user_id)}' but authenticated user was "
                f"'{self.connection.user}'"
            )
        expiration = properties.get("expiration")
        if expiration is not None:
            problem = expiration_problem(expiration)
            if problem is not None:
                return f"invalid expiration '{decode_str(expiration)}': {problem}"
        mode = properties.get("delivery_mode")
        if mode is not None and mode not in (1, 2):
            return f"invalid message: {{delivery_mode_unknown,{mode}}}"
        return None

    def _queues_named(self, names: list[str]) -> list[Queue]:
        found = (self.vhost.queues.get(name) for name in names)
        return [queue for queue in found if queue is not None]

    def _deliver(self, message: Message, queues: list[Queue], mandatory: bool, seq: int) -> None:
        if not queues:
            if mandatory:
                self._basic_return(message, 312, "NO_ROUTE")
            if seq:
                self.confirm_ready(seq)
            return
        waits = 0
        for queue in queues:
            entry = queue.publish(message)
            if entry.store_id is not None:
                waits += 1
        if seq:
            if waits:
                self.unconfirmed.add(seq)
                self.connection.broker.after_sync(lambda: self.confirm_ready(seq, True))
            else:
                self.confirm_ready(seq)

    def _basic_return(self, message: Message, code: int, text: str) -> None:
        method = b"".join(
            (
                struct.pack(">HHH", 60, 50, code),
                encode_shortstr(text),
                encode_shortstr(message.exchange),
                encode_shortstr(message.routing_key),
            )
        )
        self.connection.send_content(self.number, method, message, None)

    def confirm_ready(self, seq: int, was_waiting: bool = False) -> None:
        if self.closing:
            return
        if was_waiting:
            self.unconfirmed.discard(seq)
        self.confirmed.append(seq)
        self.connection.mark_confirms_pending(self)

    def flush_confirms(self) -> None:
        """Send acks for confirmed publishes, coalesced as RabbitMQ does."""
        if not self.confirmed or self.closing:
            self.confirmed.clear()
            return
        confirmed = sorted(self.confirmed)
        self.confirmed.clear()
        lowest_waiting = min(self.unconfirmed) if self.unconfirmed else None
        below = (
            confirmed if lowest_waiting is None else [s for s in confirmed if s < lowest_waiting]
        )
        above = confirmed[len(below) :]
        if below:
            self.send_method(cmd.Basic.Ack, delivery_tag=below[-1], multiple=len(below) > 1)
        for seq in above:
            self.send_method(cmd.Basic.Ack, delivery_tag=seq, multiple=False)

    def _confirm_select(self, m: Any) -> None:
        if self.tx_mode:
            raise precondition_failed("cannot switch from tx to confirm mode")
        self.confirm_mode = True
        if not m.nowait:
            self.send_method(cmd.Confirm.SelectOk)

    # ------------------------------------------------------------------ transactions

    def _tx_select(self, m: Any) -> None:
        if self.confirm_mode:
            raise precondition_failed("cannot switch from confirm to tx mode")
        self.tx_mode = True
        self.send_method(cmd.Tx.SelectOk)

    def _tx_commit(self, m: Any) -> None:
        if not self.tx_mode:
            raise precondition_failed("channel is not transactional")
        actions, self.tx_actions = self.tx_actions, []
        settles, self.tx_settles = self.tx_settles, []
        # Publishes first, then acks in arrival order, as rabbit_channel commits.
        for action in actions:
            action()
        for outcome, taken in settles:
            self._settle([delivery for _, delivery in taken], outcome)
        self.send_method(cmd.Tx.CommitOk)

    def _tx_rollback(self, m: Any) -> None:
        if not self.tx_mode:
            raise precondition_failed("channel is not transactional")
        self.tx_actions = []
        self._restore_tx_settles()
        self.send_method(cmd.Tx.RollbackOk)

    # ------------------------------------------------------------------ flow and close

    def _channel_flow(self, m: Any) -> None:
        if not m.active:
            raise not_implemented("active=false")
        self.send_method(cmd.Channel.FlowOk, active=True)

    def check_consumer_timeout(self, now: float, timeout_ms: int) -> AMQPError | None:
        if not self.unacked or self.closing:
            return None
        oldest = next(iter(self.unacked.values()))
        if (now - oldest.sent_at) * 1000 < timeout_ms:
            return None
        return precondition_failed(
            f"delivery acknowledgement on channel {self.number} timed out. Timeout value used: "
            f"{timeout_ms} ms. This timeout value can be configured, see consumers doc guide to "
            "learn more"
        )

    def teardown(self) -> None:
        """The channel ends: consumers leave their queues and unacked messages go back."""
        self.closing = True
        self.pending = None
        self.tx_actions = []
        # Acks never committed do not count: those messages are requeued with the rest.
        self._restore_tx_settles()
        consumers = list(self.consumers.values())
        self.consumers.clear()
        for consumer in consumers:
            consumer.queue.remove_consumer(consumer)
        self.requeue_all()
        for consumer in consumers:
            self.vhost.maybe_auto_delete(consumer.queue)


def _return_order(item: tuple[int, Delivery]) -> tuple[bytes, int]:
    tag, delivery = item
    consumer = delivery.consumer
    return (encode_str(consumer.tag) if consumer is not None else str(tag).encode(), tag)


def _get_settled(queue: Queue) -> None:
    """A basic.get delivery was settled or returned: a quorum queue's checkout ends."""
    if isinstance(queue, QuorumQueue):
        queue.checked_out_gets -= 1
