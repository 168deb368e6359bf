"""Direct reply-to: the amq.rabbitmq.reply-to pseudo-queue (the direct_reply_to capability).

A channel consumes `amq.rabbitmq.reply-to` (no-ack) and gets an address of its own,
`amq.rabbitmq.reply-to.<channel token>.<key>`; its requests carry that address as reply_to, and
whatever is published to it on the default exchange goes straight to the channel, with no queue
in between. The address names the channel and the current consumer: after a cancel, replies
to the old key are dropped, as RabbitMQ drops them.
"""

from __future__ import annotations

import base64
import binascii
import os
from itertools import count
from typing import Protocol

from tui_queue.broker.message import Message

REPLY_TO = "amq.rabbitmq.reply-to"
REPLY_TO_PREFIX = REPLY_TO + "."
_TOKEN_MARK = b"tq-reply"
_tokens = count(1)


class ReplyConsumer(Protocol):
    """The channel side of a reply consumer."""

    def deliver_reply(self, message: Message) -> None: ...


class BrokenAddress(Exception):
    """An address RabbitMQ cannot even decode: its channel process crashes (541)."""


class DirectReplyTo:
    """The reply consumers of a virtual host, by channel token and key."""

    def __init__(self) -> None:
        self._consumers: dict[str, tuple[str, ReplyConsumer]] = {}

    @staticmethod
    def new_token() -> str:
        """A channel's part of its reply addresses (RabbitMQ encodes the channel's pid)."""
        return base64.b64encode(_TOKEN_MARK + next(_tokens).to_bytes(8, "big")).decode()

    def register(self, token: str, consumer: ReplyConsumer) -> str:
        """A channel starts consuming replies; returns its address suffix."""
        key = base64.b64encode(os.urandom(16)).decode()
        self._consumers[token] = (key, consumer)
        return f"{token}.{key}"

    def unregister(self, token: str) -> None:
        self._consumers.pop(token, None)

    def lookup(self, name: str) -> ReplyConsumer | None:
        """The consumer an address belongs to, or None (an old key, a closed channel).

        Raises BrokenAddress for a `<token>.<key>` address whose token is not one of ours:
        RabbitMQ's base64 and pid decoding crash on it.
        """
        parts = name[len(REPLY_TO_PREFIX) :].split(".")
        if len(parts) != 2:
            return None
        token, key = parts
        try:
            raw = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            raise BrokenAddress(name) from None
        if not raw.startswith(_TOKEN_MARK):
            raise BrokenAddress(name)
        found = self._consumers.get(token)
        if found is None or found[0] != key:
            return None
        return found[1]

    def deliver(self, name: str, message: Message) -> None:
        consumer = self.lookup(name)
        if consumer is not None:
            consumer.deliver_reply(message)
