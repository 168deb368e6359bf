"""Queue arguments that change how a queue behaves, read once when the queue is declared.

The arguments were validated by the virtual host before the queue exists; here they become
plain values. A queue declared without any of them has no options at all, which is what keeps
its publish and dispatch paths free of the checks these features need.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_queue.broker.codec import Table, Typed, decode_str

DROP_HEAD = "drop-head"
REJECT_PUBLISH = "reject-publish"
REJECT_PUBLISH_DLX = "reject-publish-dlx"
OVERFLOW_KINDS = (DROP_HEAD, REJECT_PUBLISH, REJECT_PUBLISH_DLX)


@dataclass(frozen=True, slots=True)
class QueueOptions:
    # x-message-ttl, milliseconds
    message_ttl: int | None = None
    # x-expires, milliseconds
    expires: int | None = None
    # x-max-length (ready messages) and x-max-length-bytes (their body bytes)
    max_length: int | None = None
    max_bytes: int | None = None
    # x-overflow: what a queue at its limit does
    overflow: str = DROP_HEAD
    # x-dead-letter-exchange and x-dead-letter-routing-key
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    # x-max-priority (classic queues only)
    max_priority: int | None = None
    # x-single-active-consumer
    single_active_consumer: bool = False

    @property
    def limited(self) -> bool:
        return self.max_length is not None or self.max_bytes is not None


# Values of another type than these were refused at declare time; a store written before that
# check existed may still hold one, and it then means nothing.
def _integer(value: Typed | None) -> int | None:
    if value is None or isinstance(value.value, bool) or not isinstance(value.value, int):
        return None
    return value.value


def _text(value: Typed | None) -> str | None:
    if value is None or value.type != "longstr":
        return None
    return decode_str(value.value)


def read_queue_options(arguments: Table, queue_type: str) -> QueueOptions | None:
    """The behaviour these (validated) arguments ask for; None when they ask for nothing."""
    if not arguments:
        return None
    overflow = _text(arguments.get("x-overflow")) or DROP_HEAD
    if queue_type == "quorum" and overflow == REJECT_PUBLISH_DLX:
        # rabbit_quorum_queue logs a warning and falls back to its default.
        overflow = DROP_HEAD
    single_active = arguments.get("x-single-active-consumer")
    options = QueueOptions(
        message_ttl=_integer(arguments.get("x-message-ttl")),
        expires=_integer(arguments.get("x-expires")),
        max_length=_integer(arguments.get("x-max-length")),
        max_bytes=_integer(arguments.get("x-max-length-bytes")),
        overflow=overflow,
        dead_letter_exchange=_text(arguments.get("x-dead-letter-exchange")),
        dead_letter_routing_key=_text(arguments.get("x-dead-letter-routing-key")),
        max_priority=(
            _integer(arguments.get("x-max-priority")) if queue_type == "classic" else None
        ),
        single_active_consumer=(
            single_active is not None and single_active.type == "bool" and single_active.value
        ),
    )
    return None if options == QueueOptions() else options
