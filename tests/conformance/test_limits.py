"""Message size limit and what a channel error leaves working."""

from __future__ import annotations

import pika.exceptions
import pytest

from tests.conformance.helpers import BrokerHandle, connection, counts, temp_queue

MAX_MESSAGE_SIZE = 134_217_728


def test_message_over_max_size(broker: BrokerHandle) -> None:
    """Scenario 15: a publish over 128 MiB closes the channel with 406; the connection lives."""
    with temp_queue(broker) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.basic_publish("", name, b"x" * (MAX_MESSAGE_SIZE + 1))
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.queue_declare(name, passive=True)  # the next round trip sees the close
        assert (excinfo.value.reply_code, excinfo.value.reply_text) == (
            406,
            f"PRECONDITION_FAILED - message size {MAX_MESSAGE_SIZE + 1} is larger than "
            f"configured max size {MAX_MESSAGE_SIZE}",
        )
        assert conn.is_open
        other = conn.channel()
        other.confirm_delivery()
        other.basic_publish("", name, b"small")
        assert counts(broker, name, (1, 0)) == (1, 0)
