"""The virtual host's state: queues, exchanges and bindings, and the rules for changing them.

Nothing here knows about sockets or frames; channels call these methods and turn the raised
AMQPError into channel.close or connection.close.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from typing import Any

from tui_queue.broker.codec import Table, Typed
from tui_queue.broker.deadletter import dead_letter_copy, without_cycles
from tui_queue.broker.errors import (
    AMQPError,
    access_refused,
    command_invalid,
    not_found,
    not_implemented,
    precondition_failed,
    resource_locked,
)
from tui_queue.broker.exchanges import (
    EXCHANGE_TYPES,
    Binding,
    Exchange,
    validate_headers_binding,
)
from tui_queue.broker.message import Message, headers_of
from tui_queue.broker.priority import PriorityQueue
from tui_queue.broker.queue_options import OVERFLOW_KINDS
from tui_queue.broker.queues import Queue, QuorumQueue
from tui_queue.broker.reply_to import DirectReplyTo

PREDECLARED_EXCHANGES = (
    ("", "direct"),
    ("amq.direct", "direct"),
    ("amq.fanout", "fanout"),
    ("amq.topic", "topic"),
    ("amq.headers", "headers"),
    ("amq.match", "headers"),
)

# Queue arguments RabbitMQ compares when a queue is declared again (rabbit_amqqueue:declare_args).
EQUIVALENCE_ARGS = (
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-single-active-consumer",
    "x-queue-type",
    "x-quorum-initial-group-size",
    "x-delivery-limit",
    "x-queue-master-locator",
    "x-queue-leader-locator",
    "x-initial-cluster-size",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
)

INTEGER_TYPES = frozenset(
    {"byte", "unsignedbyte", "short", "unsignedshort", "signedint", "unsignedint", "long"}
)

# Queue arguments a quorum queue refuses outright (rabbit_quorum_queue:check_invalid_arguments).
QUORUM_UNSUPPORTED_ARGS = ("x-max-priority", "x-queue-mode", "x-queue-master-locator")

# Numeric queue arguments and their lower bound (0: may be zero, 1: must be positive).
NUMERIC_ARGS = {
    "x-expires": 1,
    "x-message-ttl": 0,
    "x-max-length": 0,
    "x-max-length-bytes": 0,
    "x-max-priority": 0,
    "x-delivery-limit": 0,
}
# The order rabbit_amqqueue:declare_args checks queue arguments in (x-delivery-limit belongs
# to quorum queues and comes last).
ARGUMENT_CHECK_ORDER = (
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-single-active-consumer",
    "x-delivery-limit",
)
MAX_PRIORITY = 255

_TYPE_CLASS = {
    "byte": "int",
    "unsignedbyte": "int",
    "short": "int",
    "unsignedshort": "int",
    "signedint": "int",
    "unsignedint": "int",
    "long": "int",
    "float": "float",
    "double": "float",
}

LOCKED_TEXT = (
    "cannot obtain exclusive access to locked {resource}. It could be originally declared on "
    "another connection or the exclusive property value does not match that of the original "
    "declaration."
)


def server_generated_name(prefix: str) -> str:
    """`amq.gen-` / `amq.ctag-` plus 22 base64url characters, as rabbit_guid makes them."""
    return prefix + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


def _erlang_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _assert_fields_equivalence(where: str, *fields: tuple[str, object, object]) -> None:
    """A redeclare must repeat each (field, current, received) exactly: 406 on the first that
    differs, in RabbitMQ's words."""
    for field, current, received in fields:
        if current != received:
            raise precondition_failed(
                f"inequivalent arg '{field}' for {where}: "
                f"received '{_erlang_value(received)}' but current is '{_erlang_value(current)}'"
            )


def _describe(typed: Typed | None) -> str:
    if typed is None:
        return "none"
    return f"the value '{_erlang_value(typed.value)}' of type '{typed.type}'"


def _is_classic(queue_type: Typed | None) -> bool:
    """An absent x-queue-type means classic, and RabbitMQ treats the two as equivalent."""
    return queue_type is None or queue_type.value in (b"classic", "classic")


def _queue_class(queue_type: str, arguments: Table) -> type[Queue]:
    if queue_type == "quorum":
        return QuorumQueue
    max_priority = arguments.get("x-max-priority")
    if max_priority is not None and max_priority.type in INTEGER_TYPES:
        return PriorityQueue
    return Queue


def _argument_problem(key: str, value: Typed, arguments: Table) -> str | None:
    """Why rabbit_amqqueue:declare_args refuses this argument value (as its ~p prints it)."""
    lowest = NUMERIC_ARGS.get(key)
    if lowest is not None:
        if value.type not in INTEGER_TYPES:
            return f'"expected integer, got {value.type}"'
        if value.value < 0:
            return f"{{value_negative,{value.value}}}"
        if value.value < lowest:
            return f"{{value_zero,{value.value}}}"
        if key == "x-max-priority" and value.value > MAX_PRIORITY:
            return f"{{max_value_exceeded,{value.value}}}"
        return None
    if key == "x-single-active-consumer":
        return None if value.type == "bool" else f"{{unacceptable_type,{value.type}}}"
    if value.type != "longstr":
        return f"{{unacceptable_type,{value.type}}}"
    if key == "x-dead-letter-routing-key" and "x-dead-letter-exchange" not in arguments:
        return "routing_key_but_no_dlx_defined"
    if key == "x-overflow" and value.value.decode("utf-8", "replace") not in OVERFLOW_KINDS:
        return "invalid_overflow"
    return None


class VirtualHost:
    def __init__(self, name: str = "/") -> None:
        self.name = name
        self.queues: dict[str, Queue] = {}
        self.exchanges: dict[str, Exchange] = {}
        for exchange_name, kind in PREDECLARED_EXCHANGES:
            self.exchanges[exchange_name] = Exchange(exchange_name, kind, True, False, False, {})
        self.exchanges["amq.rabbitmq.trace"] = Exchange(
            "amq.rabbitmq.trace", "topic", True, False, True, {}
        )
        # Consumers of amq.rabbitmq.reply-to on their channels.
        self.reply_to = DirectReplyTo()
        # Set by the durable store to hear about changes worth writing down.
        self.on_queue_created: Callable[[Queue], None] | None = None
        self.on_queue_deleted: Callable[[Queue], None] | None = None
        self.on_exchange_created: Callable[[Exchange], None] | None = None
        self.on_exchange_deleted: Callable[[Exchange], None] | None = None
        self.on_binding_changed: Callable[[Exchange, Binding, Table, bool], None] | None = None

    # ----------------------------------------------------------------- names

    def describe_queue(self, name: str) -> str:
        return f"queue '{name}' in vhost '{self.name}'"

    def describe_exchange(self, name: str) -> str:
        return f"exchange '{name}' in vhost '{self.name}'"

    def queue_not_found(self, name: str) -> AMQPError:
        return not_found(f"no {self.describe_queue(name)}")

    def exchange_not_found(self, name: str) -> AMQPError:
        return not_found(f"no {self.describe_exchange(name)}")

    # ----------------------------------------------------------------- queues

    def lookup_queue(self, name: str, owner: object) -> Queue:
        """A queue this connection may use: 404 if missing, 405 if another's exclusive queue."""
        queue = self.queues.get(name)
        if queue is None:
            raise self.queue_not_found(name)
        self.check_exclusive_access(queue, owner)
        return queue

    def check_exclusive_access(self, queue: Queue, owner: object) -> None:
        if queue.exclusive_owner is not None and queue.exclusive_owner is not owner:
            raise resource_locked(LOCKED_TEXT.format(resource=self.describe_queue(queue.name)))

    def declare_queue(
        self,
        name: str,
        *,
        passive: bool,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: Table,
        owner: object,
    ) -> Queue:
        if passive:
            return self.lookup_queue(name, owner)
        if not name:
            name = server_generated_name("amq.gen-")
        elif name.startswith("amq."):
            raise access_refused(f"queue name '{name}' contains reserved prefix 'amq.*'")
        durable = durable and not exclusive
        exclusive_owner = owner if exclusive else None
        existing = self.queues.get(name)
        if existing is not None:
            self._assert_queue_equivalence(
                existing, durable, auto_delete, arguments, exclusive_owner
            )
            return existing
        dead_letter_exchange = arguments.get("x-dead-letter-exchange")
        if dead_letter_exchange is not None and dead_letter_exchange.type != "longstr":
            # rabbit_channel checks this one itself, before the queue type and the arguments.
            raise precondition_failed(
                f"invalid type '{dead_letter_exchange.type}' for arg 'x-dead-letter-exchange' "
                f"in {self.describe_queue(name)}"
            )
        queue_type = self._queue_type(name, arguments)
        self._check_arguments(name, queue_type, arguments)
        if queue_type == "quorum":
            for failed, prop in (
                (auto_delete, "auto-delete"),
                (exclusive, "exclusive-owner"),
                (not durable, "non-durable"),
            ):
                if failed:
                    raise precondition_failed(
                        f"invalid property '{prop}' for {self.describe_queue(name)}"
                    )
        queue = _queue_class(queue_type, arguments)(
            self, name, durable, auto_delete, exclusive_owner, arguments
        )
        self.queues[name] = queue
        if self.on_queue_created is not None:
            self.on_queue_created(queue)
        queue.started()
        return queue

    def restore_queue(self, name: str, kind: str, auto_delete: bool, arguments: Table) -> Queue:
        """A durable queue read back from the store (its messages follow; then `recovered`)."""
        queue = _queue_class(kind, arguments)(self, name, True, auto_delete, None, arguments)
        self.queues[name] = queue
        return queue

    def _queue_type(self, name: str, arguments: Table) -> str:
        declared = arguments.get("x-queue-type")
        if declared is None:
            return "classic"
        value = declared.value
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        if declared.type != "longstr" or text not in ("classic", "quorum"):
            # Streams are a RabbitMQ queue type this broker does not have.
            raise precondition_failed(
                f"invalid arg 'x-queue-type' for {self.describe_queue(name)}: "
                f"\"unsupported queue type '{text}'\""
            )
        return text

    def _check_arguments(self, name: str, queue_type: str, arguments: Table) -> None:
        where = self.describe_queue(name)
        if queue_type == "quorum":
            for key in QUORUM_UNSUPPORTED_ARGS:
                if key in arguments:
                    raise precondition_failed(
                        f"invalid arg '{key}' for {where} of queue type rabbit_quorum_queue"
                    )
        for key in ARGUMENT_CHECK_ORDER:
            value = arguments.get(key)
            if value is None:
                continue
            reason = _argument_problem(key, value, arguments)
            if reason is not None:
                raise precondition_failed(f"invalid arg '{key}' for {where}: {reason}")

    def _assert_queue_equivalence(
        self,
        queue: Queue,
        durable: bool,
        auto_delete: bool,
        arguments: Table,
        exclusive_owner: object | None,
    ) -> None:
        if queue.exclusive_owner is not exclusive_owner:
            raise resource_locked(LOCKED_TEXT.format(resource=self.describe_queue(queue.name)))
        where = self.describe_queue(queue.name)
        _assert_fields_equivalence(
            where,
            ("durable", queue.durable, durable),
            ("auto_delete", queue.auto_delete, auto_delete),
        )
        self._assert_args_equivalence(queue.arguments, arguments, where, EQUIVALENCE_ARGS)

    @staticmethod
    def _assert_args_equivalence(
        current_args: Table, received_args: Table, where: str, keys: tuple[str, ...]
    ) -> None:
        for key in keys:
            current = current_args.get(key)
            received = received_args.get(key)
            if current == received or (
                key == "x-queue-type" and _is_classic(current) and _is_classic(received)
            ):
                continue
            if current is not None and received is not None:
                same_class = _TYPE_CLASS.get(current.type, current.type) == _TYPE_CLASS.get(
                    received.type, received.type
                )
                if same_class and current.value == received.value:
                    continue
                raise precondition_failed(
                    f"inequivalent arg '{key}' for {where}: "
                    f"received '{_erlang_value(received.value)}' but current is "
                    f"'{_erlang_value(current.value)}'"
                )
            raise precondition_failed(
                f"inequivalent arg '{key}' for {where}: "
                f"received {_describe(received)} but current is {_describe(current)}"
            )

    def delete_queue(self, name: str, *, if_unused: bool, if_empty: bool, owner: object) -> int:
        queue = self.queues.get(name)
        if queue is None:
            return 0
        self.check_exclusive_access(queue, owner)
        if queue.queue_type == "quorum" and (if_unused or if_empty):
            flag = "if-unused" if if_unused else "if-empty"
            raise not_implemented(
                f"cannot delete {self.describe_queue(name)}. queue.delete operations with "
                f"{flag} flag set are not supported by quorum queues"
            )
        if if_empty and queue.message_count:
            raise precondition_failed(f"{self.describe_queue(name)} not empty")
        if if_unused and queue.consumer_count:
            raise precondition_failed(f"{self.describe_queue(name)} in use")
        return self.remove_queue(queue)

    def remove_queue(self, queue: Queue) -> int:
        """Delete a queue: consumers are told, ready messages dropped, bindings removed."""
        if self.queues.get(queue.name) is not queue:
            return 0
        count = queue.message_count
        del self.queues[queue.name]
        queue.deleted = True
        queue.stop_timers()
        queue.cancel_all_consumers()
        queue.purge()
        self._remove_bindings_to("queue", queue.name)
        if self.on_queue_deleted is not None:
            self.on_queue_deleted(queue)
        return count

    def purge_queue(self, name: str, owner: object) -> int:
        return self.lookup_queue(name, owner).purge()

    def maybe_auto_delete(self, queue: Queue) -> None:
        if queue.auto_delete and queue.ever_consumed and not queue.consumers:
            self.remove_queue(queue)

    def owner_gone(self, owner: object) -> None:
        """A connection closed: its exclusive queues go with it."""
        for queue in [q for q in self.queues.values() if q.exclusive_owner is owner]:
            self.remove_queue(queue)

    # ----------------------------------------------------------------- exchanges

    def _check_not_default(self, name: str) -> None:
        if name == "":
            raise access_refused("operation not permitted on the default exchange")

    def lookup_exchange(self, name: str) -> Exchange:
        exchange = self.exchanges.get(name)
        if exchange is None:
            raise self.exchange_not_found(name)
        return exchange

    def declare_exchange(
        self,
        name: str,
        kind: str,
        *,
        passive: bool,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: Table,
    ) -> Exchange:
        if passive:
            self._check_not_default(name)
            return self.lookup_exchange(name)
        if kind not in EXCHANGE_TYPES:
            raise command_invalid(f"unknown exchange type '{kind}'")
        self._check_not_default(name)
        exchange = self.exchanges.get(name)
        if exchange is None:
            if name.startswith("amq."):
                raise access_refused(f"exchange name '{name}' contains reserved prefix 'amq.*'")
            alternate = arguments.get("alternate-exchange")
            if alternate is not None and alternate.type != "longstr":
                raise precondition_failed(
                    f"invalid type '{alternate.type}' for arg 'alternate-exchange' in "
                    f"{self.describe_exchange(name)}"
                )
            exchange = Exchange(name, kind, durable, auto_delete, internal, arguments)
            self.exchanges[name] = exchange
            if self.on_exchange_created is not None:
                self.on_exchange_created(exchange)
            return exchange
        where = self.describe_exchange(name)
        _assert_fields_equivalence(
            where,
            ("type", exchange.kind, kind),
            ("durable", exchange.durable, durable),
            ("auto_delete", exchange.auto_delete, auto_delete),
            ("internal", exchange.internal, internal),
        )
        self._assert_args_equivalence(exchange.arguments, arguments, where, ("alternate-exchange",))
        return exchange

    def delete_exchange(self, name: str, *, if_unused: bool) -> None:
        self._check_not_default(name)
        if name.startswith("amq."):
            raise access_refused(f"deletion of system {self.describe_exchange(name)} not allowed")
        exchange = self.exchanges.get(name)
        if exchange is None:
            return
        if if_unused and exchange.bindings:
            raise precondition_failed(f"{self.describe_exchange(name)} in use")
        self._remove_exchange(exchange)

    def _remove_exchange(self, exchange: Exchange) -> None:
        del self.exchanges[exchange.name]
        for binding in list(exchange.bindings):
            self._remove_binding(exchange, binding)
        # Bindings that point at this exchange from others go too.
        self._remove_bindings_to("exchange", exchange.name)
        if self.on_exchange_deleted is not None:
            self.on_exchange_deleted(exchange)

    # ----------------------------------------------------------------- bindings

    def _remove_bindings_to(self, destination_kind: str, destination: str) -> None:
        for exchange in list(self.exchanges.values()):
            for binding in [
                b
                for b in exchange.bindings
                if b.destination_kind == destination_kind and b.destination == destination
            ]:
                self._remove_binding(exchange, binding)

    def _binding_ends(
        self,
        source: str,
        destination: str,
        destination_kind: str,
        arguments: Table,
        owner: object,
    ) -> Exchange:
        self._check_not_default(source)
        if destination_kind == "exchange":
            self._check_not_default(destination)
        exchange = self.exchanges.get(source)
        if exchange is None:
            raise self.exchange_not_found(source)
        queue = None
        if destination_kind == "queue":
            queue = self.queues.get(destination)
            if queue is None:
                raise self.queue_not_found(destination)
        elif destination not in self.exchanges:
            raise self.exchange_not_found(destination)
        # RabbitMQ validates the binding once both ends exist, before the exclusivity check.
        if exchange.kind == "headers":
            problem = validate_headers_binding(arguments)
            if problem is not None:
                raise precondition_failed(problem)
        if queue is not None:
            self.check_exclusive_access(queue, owner)
        return exchange

    def bind(
        self,
        source: str,
        destination: str,
        destination_kind: str,
        routing_key: str,
        arguments: Table,
        owner: object,
    ) -> None:
        exchange = self._binding_ends(source, destination, destination_kind, arguments, owner)
        binding = Binding(
            source, destination, destination_kind, routing_key, Binding.arguments_key(arguments)
        )
        if exchange.add_binding(binding, arguments) and self.on_binding_changed is not None:
            self.on_binding_changed(exchange, binding, arguments, True)

    def unbind(
        self,
        source: str,
        destination: str,
        destination_kind: str,
        routing_key: str,
        arguments: Table,
        owner: object,
    ) -> None:
        # Unbinding is lenient in RabbitMQ: a missing binding, queue or exchange is fine.
        self._check_not_default(source)
        if destination_kind == "exchange":
            self._check_not_default(destination)
        exchange = self.exchanges.get(source)
        if exchange is None:
            return
        binding = Binding(
            source, destination, destination_kind, routing_key, Binding.arguments_key(arguments)
        )
        self._remove_binding(exchange, binding)

    def _remove_binding(self, exchange: Exchange, binding: Binding) -> None:
        arguments = exchange.bindings.get(binding, {})
        if exchange.remove_binding(binding):
            if self.on_binding_changed is not None:
                self.on_binding_changed(exchange, binding, arguments, False)
            if exchange.auto_delete and not exchange.bindings and exchange.name in self.exchanges:
                self._remove_exchange(exchange)

    # ----------------------------------------------------------------- routing

    def route(
        self,
        exchange: Exchange,
        routing_key: str,
        properties: bytes,
        extra_keys: tuple[str, ...] = (),
    ) -> list[Queue]:
        """The queues a message reaches (rabbit_exchange:route): through exchange-to-exchange
        bindings, each exchange visited once, and to an exchange's alternate-exchange when its
        own bindings match nothing. `extra_keys` are the CC and BCC routing keys."""
        if exchange.name == "":
            if not extra_keys:
                queue = self.queues.get(routing_key)
                return [queue] if queue is not None else []
            by_name = {}
            for key in (routing_key, *extra_keys):
                queue = self.queues.get(key)
                if queue is not None:
                    by_name[key] = queue
            return list(by_name.values())
        keys = (routing_key, *extra_keys) if extra_keys else None
        headers: Table | None = None
        found: dict[str, Queue] = {}
        seen = {exchange.name}
        pending = [exchange]
        while pending:
            current = pending.pop()
            if current.kind == "headers" and headers is None:
                headers = headers_of(properties)
            matched = False
            bindings = (
                current.matches(routing_key, headers)
                if keys is None
                else current.matches_any(keys, headers)
            )
            for binding in bindings:
                matched = True
                if binding.destination_kind == "queue":
                    queue = self.queues.get(binding.destination)
                    if queue is not None:
                        found.setdefault(queue.name, queue)
                elif binding.destination not in seen:
                    seen.add(binding.destination)
                    target = self.exchanges.get(binding.destination)
                    if target is not None:
                        pending.append(target)
            alternate = current.alternate
            if not matched and alternate is not None and alternate not in seen:
                seen.add(alternate)
                target = self.exchanges.get(alternate)
                if target is not None:
                    pending.append(target)
        return list(found.values())

    # ----------------------------------------------------------------- dead-lettering

    def dead_letter(self, queue: Queue, message: Message, reason: str) -> None:
        """Hand a message that leaves `queue` (rejected, expired, over its length limit) to
        the queue's dead-letter exchange; without that exchange it is simply gone."""
        options = queue.options
        if options is None or options.dead_letter_exchange is None:
            return
        exchange = self.exchanges.get(options.dead_letter_exchange)
        if exchange is None:
            return
        copy = dead_letter_copy(
            message, reason, queue.name, exchange.name, options.dead_letter_routing_key
        )
        targets = self.route(exchange, copy.routing_key, copy.properties, copy.extra_keys)
        for target in without_cycles(copy, reason, targets):
            target.publish(copy)
