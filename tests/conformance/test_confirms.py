"""Publisher confirms (and their conflicts with tx mode)."""

from __future__ import annotations

import pika
import pika.exceptions
import pytest
from pamqp import commands

from tests.conformance.helpers import (
    BrokerHandle,
    close_fields,
    connection,
    counts,
    expect_channel_close,
    raw_ready,
    temp_queue,
    unique,
)


def test_confirms_with_pika(broker: BrokerHandle) -> None:
    """Scenario 12."""
    with temp_queue(broker) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish("", name, b"ok")  # acked: no exception
        channel.basic_publish("", name, b"persistent", pika.BasicProperties(delivery_mode=2))
        with pytest.raises(pika.exceptions.UnroutableError):
            channel.basic_publish("", unique("nowhere"), b"lost", mandatory=True)
        channel.basic_publish("", unique("nowhere"), b"dropped")  # unroutable, not mandatory
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            channel.basic_publish("nope", name, b"x")
        assert (excinfo.value.reply_code, excinfo.value.reply_text) == (
            404,
            "NOT_FOUND - no exchange 'nope' in vhost '/'",
        )
        assert counts(broker, name, (2, 0)) == (2, 0)


def test_confirm_frames(broker: BrokerHandle) -> None:
    """Sequence numbers start at 1 and count every publish; a return precedes its ack."""
    client = raw_ready(broker, channels=1)
    try:
        queue = client.call(
            commands.Queue.Declare(queue="", exclusive=True), 1, commands.Queue.DeclareOk
        ).queue
        client.call(commands.Confirm.Select(), 1, commands.Confirm.SelectOk)
        client.call(commands.Confirm.Select(), 1, commands.Confirm.SelectOk)  # idempotent
        client.send_message(1, b"a", routing_key=queue)
        client.send_message(1, b"b", routing_key="tq-nowhere")
        client.send_message(1, b"c", routing_key="tq-nowhere", mandatory=True)
        # Acks may be coalesced (multiple=true) and need not come in order (an unroutable
        # message is confirmed at once, a routed one once its queue has it), but together they
        # cover 1..3, each exactly once, and the return of message 3 precedes its ack.
        seen: list[tuple] = []
        acked: list[int] = []
        returned = False
        while sorted(acked) != [1, 2, 3]:
            method = client.read_until(lambda f: f.frame_type == 1).method
            seen.append((method.name, *vars_of(method)))
            if isinstance(method, commands.Basic.Return):
                assert (method.reply_code, method.reply_text) == (312, "NO_ROUTE")
                returned = True
                continue
            assert isinstance(method, commands.Basic.Ack), seen
            tag = method.delivery_tag
            newly = [t for t in range(1, tag + 1) if t not in acked] if method.multiple else [tag]
            assert newly and all(t not in acked for t in newly), seen
            assert returned or 3 not in newly, seen
            acked.extend(newly)
        client.close_connection()
    finally:
        client.close()


def vars_of(method: object) -> tuple:
    return tuple(getattr(method, name) for name in getattr(method, "__slots__", ()))


def test_single_confirm_is_not_multiple(broker: BrokerHandle) -> None:
    client = raw_ready(broker, channels=1)
    try:
        queue = client.call(
            commands.Queue.Declare(queue="", exclusive=True), 1, commands.Queue.DeclareOk
        ).queue
        client.call(commands.Confirm.Select(), 1, commands.Confirm.SelectOk)
        client.send_message(1, b"a", routing_key=queue)
        frame = client.read_until(lambda f: True)
        assert frame.is_method(commands.Basic.Ack)
        assert (frame.method.delivery_tag, frame.method.multiple) == (1, False)
        client.close_connection()
    finally:
        client.close()


def test_confirm_select_nowait(broker: BrokerHandle) -> None:
    client = raw_ready(broker, channels=1)
    try:
        queue = client.call(
            commands.Queue.Declare(queue="", exclusive=True), 1, commands.Queue.DeclareOk
        ).queue
        client.send_frame(commands.Confirm.Select(nowait=True), 1)
        client.send_message(1, b"a", routing_key=queue)
        frame = client.read_until(lambda f: True)
        assert frame.is_method(commands.Basic.Ack)
        assert frame.method.delivery_tag == 1
        client.close_connection()
    finally:
        client.close()


TX_CONFLICTS = {
    "tx-then-confirm": (
        [commands.Tx.Select()],
        commands.Confirm.Select(),
        "PRECONDITION_FAILED - cannot switch from tx to confirm mode",
        (85, 10),
    ),
    "confirm-then-tx": (
        [commands.Confirm.Select()],
        commands.Tx.Select(),
        "PRECONDITION_FAILED - cannot switch from confirm to tx mode",
        (90, 10),
    ),
    "commit-without-tx": (
        [],
        commands.Tx.Commit(),
        "PRECONDITION_FAILED - channel is not transactional",
        (90, 20),
    ),
    "rollback-without-tx": (
        [],
        commands.Tx.Rollback(),
        "PRECONDITION_FAILED - channel is not transactional",
        (90, 30),
    ),
}


@pytest.mark.parametrize("case", list(TX_CONFLICTS))
def test_tx_and_confirm_conflicts(broker: BrokerHandle, case: str) -> None:
    before, method, text, ids = TX_CONFLICTS[case]
    client = raw_ready(broker, channels=1)
    try:
        for step in before:
            client.send_frame(step, 1)
            client.read_until(lambda f: True)
        client.send_frame(method, 1)
        close = expect_channel_close(client, 1)
        assert close_fields(close) == (406, text, *ids)
        client.close_connection()
    finally:
        client.close()


def test_tx_commit_publishes(broker: BrokerHandle) -> None:
    with temp_queue(broker) as name, connection(broker) as conn:
        channel = conn.channel()
        channel.tx_select()
        channel.basic_publish("", name, b"a")
        channel.basic_publish("", name, b"b")
        assert counts(broker, name) == (0, 0)
        channel.tx_commit()
        assert counts(broker, name, (2, 0)) == (2, 0)
        channel.basic_publish("", name, b"c")
        channel.tx_rollback()
        assert counts(broker, name) == (2, 0)
