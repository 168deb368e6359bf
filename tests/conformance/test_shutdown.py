"""A broker shutting down tells its clients 320 CONNECTION_FORCED."""

from __future__ import annotations

import time
from collections.abc import Callable

import pika.exceptions
import pytest

from tests.conformance.helpers import BrokerHandle


@pytest.mark.slow
def test_shutdown_sends_connection_forced(
    private_broker: tuple[BrokerHandle, Callable[[], None]],
) -> None:
    target, shut_down = private_broker
    conn = target.connect()
    conn.channel()
    shut_down()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as excinfo:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.2)
    assert (excinfo.value.reply_code, excinfo.value.reply_text) == (
        320,
        "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'",
    )
