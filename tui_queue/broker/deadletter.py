"""Dead-lettering: the copy of a message that a queue hands to its x-dead-letter-exchange.

The copy carries the headers RabbitMQ 3.10 writes (rabbit_dead_letter:make_msg): an `x-death`
array with one table per (queue, reason), counted, plus `x-first-death-*` on the first death;
its expiration moves into x-death as `original-expiration`. Routing the copy is the virtual
host's job; this module only builds it and spots dead-letter cycles.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from tui_queue.broker.codec import Table, Typed, encode_str, encode_table
from tui_queue.broker.message import (
    BIT_EXPIRATION,
    BIT_HEADERS,
    Message,
    headers_of,
    join_properties,
    split_properties,
)

if TYPE_CHECKING:
    from tui_queue.broker.queues import Queue

EXPIRED = "expired"
REJECTED = "rejected"
MAXLEN = "maxlen"

_ROUTING_HEADERS = ("CC", "BCC")


def _longstr(value: str | bytes) -> Typed:
    return Typed("longstr", encode_str(value) if isinstance(value, str) else value)


def _field(table: Table, key: str) -> Any:
    """The value under `key`, or None (rabbit_dead_letter:x_death_event_key)."""
    found = table.get(key)
    return None if found is None else found.value


def _sorted(table: Table) -> Table:
    """rabbit_misc:sort_field_table: keys in byte order."""
    return dict(sorted(table.items(), key=lambda item: encode_str(item[0])))


def _set(table: Table, key: str, value: Typed) -> Table:
    """rabbit_misc:set_table_value: store the key, then sort the whole table."""
    changed = dict(table)
    changed[key] = value
    return _sorted(changed)


def header_routes(headers: Table) -> list[bytes]:
    """The long strings of the CC and BCC arrays (rabbit_basic:header_routes)."""
    routes = []
    for key in _ROUTING_HEADERS:
        value = headers.get(key)
        if value is not None and value.type == "array":
            routes += [item.value for item in value.value if item.type == "longstr"]
    return routes


def _with_count(info: Table, count: int) -> Table:
    return {"count": Typed("long", count), **info}


def _matches(info: Table, queue: Any, reason: Any) -> bool:
    return _field(info, "queue") == queue and _field(info, "reason") == reason


def _group_by_queue_and_reason(deaths: Sequence[Typed]) -> list[Typed]:
    """rabbit_dead_letter:group_by_queue_and_reason, which also reverses the order."""
    tables = [death for death in deaths if death.type == "table"]
    if len(tables) <= 1:
        return tables
    seen: set[tuple[Any, Any]] = set()
    grouped: list[Typed] = []
    for death in tables:
        queue, reason = _field(death.value, "queue"), _field(death.value, "reason")
        matches = [other for other in tables if _matches(other.value, queue, reason)]
        first = matches[0].value
        if "count" not in first:
            first = _with_count(first, len(matches))
        key = (queue, reason)
        if key not in seen:
            grouped.insert(0, Typed("table", first))
            seen.add(key)
    return grouped


def _update_x_death(info: Table, headers: Table) -> Table:
    """rabbit_dead_letter:update_x_death_header."""
    queue, reason = info["queue"].value, info["reason"].value
    existing = headers.get("x-death")
    if existing is None:
        # The first death also gets top-level headers (rabbitmq-server#1332).
        headers = _set(headers, "x-first-death-reason", info["reason"])
        headers = _set(headers, "x-first-death-queue", info["queue"])
        headers = _set(headers, "x-first-death-exchange", info["exchange"])
        return _set(headers, "x-death", Typed("array", [Typed("table", _with_count(info, 1))]))
    if existing.type != "array":
        # RabbitMQ logs the invalid header and starts the list again.
        return _set(headers, "x-death", Typed("array", [Typed("table", _with_count(info, 1))]))
    grouped = _group_by_queue_and_reason(existing.value)
    matches = [death for death in grouped if _matches(death.value, queue, reason)]
    others = [death for death in grouped if not _matches(death.value, queue, reason)]
    if matches:
        # The earlier event is kept as it was (time, exchange, keys); only its count moves on.
        counted = dict(matches[0].value)
        previous = _field(counted, "count")
        counted["count"] = Typed("long", 1 if previous is None else int(previous) + 1)
    else:
        counted = _with_count(info, 1)
    return _set(headers, "x-death", Typed("array", [Typed("table", _sorted(counted)), *others]))


def dead_letter_copy(
    message: Message,
    reason: str,
    queue_name: str,
    exchange_name: str,
    routing_key: str | None,
    *,
    now: float | None = None,
) -> Message:
    """The message as it leaves `queue_name` for `exchange_name` (rabbit_dead_letter:make_msg)."""
    fields = split_properties(message.properties)
    headers = headers_of(message.properties) if BIT_HEADERS in fields else {}
    routes = [encode_str(message.routing_key), *header_routes(headers)]
    info: Table = {
        "reason": _longstr(reason),
        "queue": _longstr(queue_name),
        "time": Typed("timestamp", int(time.time() if now is None else now)),
        "exchange": _longstr(message.exchange),
        "routing-keys": Typed("array", [_longstr(key) for key in routes]),
    }
    expiration = fields.pop(BIT_EXPIRATION, None)
    if expiration is not None:
        info["original-expiration"] = _longstr(expiration[1:])
    headers = _update_x_death(info, headers)
    if routing_key is not None:
        # The dead-letter routing key replaces the CC keys too.
        headers.pop("CC", None)
    fields[BIT_HEADERS] = encode_table(headers)
    copy = Message(
        exchange_name,
        message.routing_key if routing_key is None else routing_key,
        join_properties(fields),
        message.body,
        message.persistent,
    )
    copy.priority = message.priority
    copy.extra_keys = message.extra_keys if routing_key is None else ()
    return copy


def _is_cycle(queue_name: bytes, deaths: Sequence[Typed]) -> bool:
    """rabbit_dead_letter:is_cycle: the queue died this message before, and nothing on the way
    back was a rejection (a consumer's decision breaks the cycle)."""
    own = Typed("longstr", queue_name)
    for index, death in enumerate(deaths):
        if death.type == "table" and death.value.get("queue") == own:
            return all(
                earlier.type == "table"
                and earlier.value.get("reason") != Typed("longstr", REJECTED.encode())
                for earlier in deaths[: index + 1]
            )
    return False


def without_cycles(copy: Message, reason: str, queues: Iterable[Queue]) -> list[Queue]:
    """The target queues minus those that would receive this copy in a cycle (dropped there,
    as RabbitMQ drops them) -- rejections never cycle."""
    targets = list(queues)
    if reason == REJECTED or not targets:
        return targets
    deaths = headers_of(copy.properties).get("x-death")
    if deaths is None or deaths.type != "array":
        return targets
    return [queue for queue in targets if not _is_cycle(encode_str(queue.name), deaths.value)]
