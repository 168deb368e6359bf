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
    encode_table,
    method_ids,
)
from tui_queue.broker.errors import (
    AMQPError,
    access_refused,
    channel_crash,
    not_allowed,
    not_found,
    not_implemented,
    precondition_failed,
    resource_locked,
)
from tui_queue.broker.message import (
    BIT_HEADERS,
    BIT_REPLY_TO,
    Entry,
    Message,
    PropertyInfo,
    Undecodable,
    encode_property_shortstr,
    expiration_problem,
    headers_of,
    inspect_properties,
    join_properties,
    split_properties,
)
from tui_queue.broker.queues import Consumer, Queue, QuorumQueue
from tui_queue.broker.reply_to import (
    REPLY_TO,
    REPLY_TO_PREFIX,
    BrokenAddress,
    DirectReplyTo,
    ReplyConsumer,
)
from tui_queue.broker.vhost import INTEGER_TYPES, server_generated_name

if TYPE_CHECKING:
    from tui_queue.broker.connection import Connection

_DELIVER_HEAD = struct.pack(">HH", 60, 60)
_GET_OK_HEAD = struct.pack(">HH", 60, 71)
_U64_BIT = struct.Struct(">QB")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")

PUBLISH_IDS = (60, 40)
_FAST_REPLY_TO = REPLY_TO.encode()
_ROUTING_HEADERS = ("CC", "BCC")


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


class PublishInfo:
    """What a publish's property section means for the broker, computed once per distinct
    section: a publisher sending the same properties again (the usual case) pays a comparison.
    """

    __slots__ = ("properties", "persistent", "ttl", "priority", "extra_keys", "fast_reply", "plain")

    def __init__(
        self,
        properties: bytes,
        persistent: bool,
        ttl: int | None,
        priority: int,
        extra_keys: tuple[str, ...],
        fast_reply: bool,
    ) -> None:
        # The section to store: the publisher's own, unless BCC had to be taken out.
        self.properties = properties
        self.persistent = persistent
        self.ttl = ttl
        self.priority = priority
        self.extra_keys = extra_keys
        # reply_to is amq.rabbitmq.reply-to: the channel's reply address goes in its place.
        self.fast_reply = fast_reply
        # Nothing beyond `persistent` to copy onto the message.
        self.plain = ttl is None and not priority and not extra_keys


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
        # Publishes a queue refused (x-overflow reject-publish): nacked, not acked.
        self.rejected: list[int] = []
        self.unconfirmed: set[int] = set()
        # The last property section published here and what it meant.
        self._last_properties = b""
        self._last_info: PublishInfo | None = None
        # Direct reply-to: this channel's token, and (tag, address) of its reply consumer.
        self.reply_token = ""
        self.reply_consumer: tuple[str, str] | None = None
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
        if m.queue.startswith(REPLY_TO):
            self._reply_to_declare(m)
            return
        existed = bool(m.queue) and m.queue in self.vhost.queues
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
        if existed and not m.nowait:
            # The counts in declare-ok come from the queue's stat, which renews a classic
            # queue's x-expires lease (nowait skips the stat, and the renewal).
            queue.declared()
        if not m.nowait:
            self.send_method_when_stored(
                cmd.Queue.DeclareOk,
                queue=queue.name,
                message_count=queue.message_count,
                consumer_count=queue.consumer_count,
            )

    def _reply_to_declare(self, m: Any) -> None:
        """amq.rabbitmq.reply-to and reply addresses "exist" while their consumer does, with
        no messages and one consumer; anything else under that prefix is not found (even a
        non-passive declare: the reserved-name rule never gets to see it)."""
        name = m.queue
        if name == REPLY_TO:
            exists = True
        elif name.startswith(REPLY_TO_PREFIX):
            consumer = self._reply_target(name)
            if consumer is self:
                # RabbitMQ's channel asks its own process and crashes on the call.
                raise channel_crash()
            exists = consumer is not None
        else:
            exists = False
        if not exists:
            raise self.vhost.queue_not_found(name)
        self.last_queue = name
        if not m.nowait:
            self.send_method(cmd.Queue.DeclareOk, queue=name, message_count=0, consumer_count=1)

    def _reply_target(self, name: str) -> ReplyConsumer | None:
        try:
            return self.vhost.reply_to.lookup(name)
        except BrokenAddress:
            raise channel_crash() from None

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
        if m.queue == REPLY_TO:
            self._reply_to_consume(m)
            return
        queue = self.vhost.lookup_queue(self.queue_name(m.queue), self.connection)
        tag = m.consumer_tag or server_generated_name("amq.ctag-")
        if tag in self.consumers:
            raise not_allowed(f"attempt to reuse consumer tag '{tag}'")
        if (
            queue.has_exclusive_consumer()
            or (m.exclusive and queue.consumer_count)
            or (m.exclusive and queue.single_active and queue.queue_type == "classic")
        ):
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

    def _reply_to_consume(self, m: Any) -> None:
        """Consume direct replies: no-ack only, one reply consumer per channel."""
        if m.consumer_tag and m.consumer_tag in self.consumers:
            raise not_allowed(f"attempt to reuse consumer tag '{m.consumer_tag}'")
        if not m.no_ack:
            raise precondition_failed("reply consumer cannot acknowledge")
        if self.reply_consumer is not None:
            raise precondition_failed("reply consumer already set")
        tag = m.consumer_tag or server_generated_name("amq.ctag-")
        if not self.reply_token:
            self.reply_token = DirectReplyTo.new_token()
        suffix = self.vhost.reply_to.register(self.reply_token, self)
        self.reply_consumer = (tag, REPLY_TO_PREFIX + suffix)
        if not m.nowait:
            self.send_method(cmd.Basic.ConsumeOk, consumer_tag=tag)

    def deliver_reply(self, message: Message) -> None:
        """A message published to this channel's reply address. RabbitMQ sends it with the
        channel's next delivery tag but does not use the tag up (it is no-ack)."""
        if self.closing or self.reply_consumer is None:
            return
        method = b"".join(
            (
                _DELIVER_HEAD,
                encode_shortstr(self.reply_consumer[0]),
                _U64_BIT.pack(self.next_tag, 0),
                encode_shortstr(message.exchange),
                encode_shortstr(message.routing_key),
            )
        )
        self.connection.send_content(self.number, method, message, None)

    def _basic_cancel(self, m: Any) -> None:
        if self.reply_consumer is not None and m.consumer_tag == self.reply_consumer[0]:
            self.vhost.reply_to.unregister(self.reply_token)
            self.reply_consumer = None
            if not m.nowait:
                self.send_method(cmd.Basic.CancelOk, consumer_tag=m.consumer_tag)
            return
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
        if queue.single_active and isinstance(queue, QuorumQueue):
            raise resource_locked(
                f"cannot obtain access to locked {self.vhost.describe_queue(queue.name)}. "
                "basic.get operations are not supported by quorum queues with single active "
                "consumer"
            )
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
                if not consumer.active and not consumer.unacked:
                    _checkout_ended(consumer.queue)
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
            consumer = delivery.consumer
            if consumer is not None:
                consumer.unacked -= 1
                self.limited_unacked -= 1
                if not consumer.active and not consumer.unacked:
                    _checkout_ended(consumer.queue)
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
        raw = pending.properties
        info = self._last_info
        if info is None or raw != self._last_properties:
            info = self._read_properties(raw)
            self._last_properties, self._last_info = raw, info
        elif info.fast_reply and self.reply_consumer is None:
            raise precondition_failed("fast reply consumer does not exist").at(*PUBLISH_IDS)
        properties = info.properties
        if info.fast_reply:
            properties = self._with_reply_address(properties)
        message = Message(pending.exchange, pending.routing_key, properties, body, info.persistent)
        if not info.plain:
            message.ttl = info.ttl
            message.priority = info.priority
            message.extra_keys = info.extra_keys
        seq = 0
        if self.confirm_mode:
            self.publish_seq += 1
            seq = self.publish_seq
        queues = self.vhost.route(exchange, message.routing_key, properties, message.extra_keys)
        if exchange.name == "" and (not queues or message.extra_keys):
            self._deliver_replies(message)
        if self.tx_mode:
            # RabbitMQ routes a transactional publish now and delivers it at commit, looking
            # its queues up by name again then (a queue deleted meanwhile is skipped).
            names = [queue.name for queue in queues]
            self.tx_actions.append(
                lambda: self._deliver(message, self._queues_named(names), pending.mandatory, 0)
            )
        else:
            self._deliver(message, queues, pending.mandatory, seq)

    def _read_properties(self, raw: bytes) -> PublishInfo:
        """Check a publish's properties as rabbit_channel and rabbit_basic do, in their order:
        decodable at all (else the channel crashes: 541), a reply consumer for a fast reply,
        user_id, expiration, the CC and BCC headers, delivery_mode."""
        try:
            info = inspect_properties(raw)
        except Undecodable:
            raise channel_crash() from None
        fast_reply = info.reply_to == _FAST_REPLY_TO
        problem = None
        if fast_reply and self.reply_consumer is None:
            problem = "fast reply consumer does not exist"
        elif info.user_id is not None and info.user_id != encode_str(self.connection.user):
            problem = (
                f"user_id property set to '{decode_str(info.user_id)}' but authenticated user "
                f"was '{self.connection.user}'"
            )
        elif info.expiration is not None:
            expiration_error = expiration_problem(info.expiration)
            if expiration_error is not None:
                problem = f"invalid expiration '{decode_str(info.expiration)}': {expiration_error}"
        if problem is not None:
            raise precondition_failed(problem).at(*PUBLISH_IDS)
        extra_keys, properties = self._routing_headers(raw, info)
        mode = info.delivery_mode
        if mode is not None and mode not in (1, 2):
            raise precondition_failed(f"invalid message: {{delivery_mode_unknown,{mode}}}").at(
                *PUBLISH_IDS
            )
        return PublishInfo(
            properties,
            mode == 2,
            None if info.expiration is None else int(info.expiration),
            info.priority or 0,
            extra_keys,
            fast_reply,
        )

    @staticmethod
    def _routing_headers(raw: bytes, info: PropertyInfo) -> tuple[tuple[str, ...], bytes]:
        """Sender-selected distribution: the CC and BCC headers (arrays of long strings) are
        more routing keys, and BCC is taken out of the message. Returns those keys and the
        property section to keep."""
        span = info.headers
        # A header named CC or BCC has "CC" in its encoded key; most messages stop here.
        if span is None or raw.find(b"CC", span[0], span[1]) < 0:
            return (), raw
        headers = headers_of(raw)
        keys: list[str] = []
        for name in _ROUTING_HEADERS:
            value = headers.get(name)
            if value is None:
                continue
            if value.type != "array":
                raise precondition_failed(
                    f'invalid message: {{unacceptable_type_in_header,"{name}",{value.type}}}'
                ).at(*PUBLISH_IDS)
            keys += [decode_str(item.value) for item in value.value if item.type == "longstr"]
        if "BCC" not in headers:
            return tuple(keys), raw
        del headers["BCC"]
        fields = split_properties(raw)
        fields[BIT_HEADERS] = encode_table(headers)
        return tuple(keys), join_properties(fields)

    def _with_reply_address(self, properties: bytes) -> bytes:
        """reply_to amq.rabbitmq.reply-to becomes this channel's reply address."""
        assert self.reply_consumer is not None
        fields = split_properties(properties)
        fields[BIT_REPLY_TO] = encode_property_shortstr(encode_str(self.reply_consumer[1]))
        return join_properties(fields)

    def _deliver_replies(self, message: Message) -> None:
        """Routing keys on the default exchange that are reply addresses go to their channel
        (rabbit_exchange:route does it while routing; they are not queues, so a mandatory
        message with no other destination still comes back)."""
        for key in sorted({message.routing_key, *message.extra_keys}):
            if key.startswith(REPLY_TO_PREFIX):
                try:
                    self.vhost.reply_to.deliver(key, message)
                except BrokenAddress:
                    raise channel_crash() from None

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
        refused = False
        for queue in queues:
            entry = queue.publish(message, self)
            if entry is None:
                refused = True
            elif entry.store_id is not None:
                waits += 1
        if seq:
            if refused:
                # A queue at its limit with x-overflow reject-publish: the publisher is told.
                self.rejected.append(seq)
                self.connection.mark_confirms_pending(self)
            elif waits:
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
        """Send acks (and nacks) for settled publishes, coalesced as RabbitMQ does."""
        if (not self.confirmed and not self.rejected) or self.closing:
            self.confirmed.clear()
            self.rejected.clear()
            return
        confirmed = sorted(self.confirmed)
        rejected = sorted(self.rejected)
        self.confirmed.clear()
        self.rejected.clear()
        lowest_waiting = min(self.unconfirmed) if self.unconfirmed else None
        if confirmed:
            # rabbit_channel:coalesce_and_send: one multiple=true ack for the run below both the
            # oldest publish still waiting and the oldest nack, then single acks.
            cutoff = confirmed[-1] + 1 if lowest_waiting is None else lowest_waiting
            if rejected:
                cutoff = min(cutoff, rejected[0])
            below = [seq for seq in confirmed if seq < cutoff]
            if below:
                self.send_method(cmd.Basic.Ack, delivery_tag=below[-1], multiple=len(below) > 1)
            for seq in confirmed[len(below) :]:
                self.send_method(cmd.Basic.Ack, delivery_tag=seq, multiple=False)
        for seq in rejected:
            # A queue refuses messages one at a time and RabbitMQ nacks each on its own, with
            # multiple=true unless an older publish still waits, and its default requeue=true.
            multiple = lowest_waiting is None or seq < lowest_waiting
            self.send_method(cmd.Basic.Nack, delivery_tag=seq, multiple=multiple, requeue=True)

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
        if self.reply_consumer is not None:
            self.vhost.reply_to.unregister(self.reply_token)
            self.reply_consumer = None
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
        queue.checkout_ended()


def _checkout_ended(queue: Queue) -> None:
    """A cancelled consumer's last unacked message was settled or returned."""
    if isinstance(queue, QuorumQueue):
        queue.checkout_ended()
