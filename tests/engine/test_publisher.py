"""The publisher against real brokers: tutorial bodies, persistence, confirms, size limit."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tui_queue.engine import MessagePublished, PublishOutcome, TaskTooLarge
from tui_queue.engine.connect import connect

from .conftest import BrokerUnderTest, EngineHarness

Harness = Callable[..., EngineHarness]


def get_all(broker: BrokerUnderTest, queue: str) -> list[tuple[bytes, int | None, str | None]]:
    conn = connect(broker.url)
    channel = conn.channel()
    found = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        found.append((body, properties.delivery_mode, properties.message_id))
    conn.close()
    return found


def test_bodies_modes_and_ids(
    harness: Harness, engine_broker: BrokerUnderTest, queue_name: str
) -> None:
    h = harness()
    h.engine.publish("").wait(10)  # new_task.py with no words
    h.engine.publish_copies("copy.", 2, persistent=False).wait(10)
    h.engine.publish_heavy_light(4, heavy_dots=3, light_dots=1).wait(10)
    messages = get_all(engine_broker, queue_name)
    bodies = [body.decode() for body, _mode, _id in messages]
    assert bodies == [
        "Hello World!",
        "copy.",
        "copy.",
        "Heavy task 1...",
        "Light task 2.",
        "Heavy task 3...",
        "Light task 4.",
    ]
    assert [mode for _body, mode, _id in messages] == [2, 1, 1, 2, 2, 2, 2]
    run = h.engine.ledger.ids.run
    assert [mid for _b, _m, mid in messages] == [f"{run}.{n}" for n in range(1, 8)]
    published = h.events.of_type(MessagePublished)
    assert [e.outcome for e in published] == [PublishOutcome.SENT] * 7
    # taken out behind the ledger's back: it still counts them ready
    assert h.engine.totals().ready == 7


def test_confirms_give_a_per_message_outcome(harness: Harness) -> None:
    h = harness(publisher_confirms=True)
    results = h.engine.publish(["a.", "b."]).wait(10)
    assert [r.outcome for r in results] == [PublishOutcome.CONFIRMED] * 2
    assert h.engine.passive_declare()[0] == 2


def test_oversized_task_is_refused_before_the_wire(harness: Harness) -> None:
    h = harness(max_body_bytes=1000)
    with pytest.raises(TaskTooLarge, match="1,001 bytes is over the broker's limit of 1,000"):
        h.engine.publish(["fine", "x" * 1001])
    assert h.engine.totals().published == 0
    assert h.engine.passive_declare()[0] == 0
    assert not h.events.of_type(MessagePublished)


def test_purge_counts_ready_only(harness: Harness) -> None:
    h = harness(seconds_per_dot=0.2)
    from tui_queue.engine import WorkerSettings

    a = h.add(WorkerSettings(prefetch=1))
    h.engine.publish(["held.....", "r1", "r2"]).wait(10)
    h.wait(lambda: h.engine.ledger.held_by(a) == 1, "one held")
    assert h.engine.purge() == 2
    totals = h.engine.totals()
    assert (totals.purged, totals.ready) == (2, 0)
    h.wait(lambda: h.engine.totals().done == 1, "the held one finishes")
    assert h.engine.totals().balanced


def test_separate_publishes_in_quick_succession_all_go_out(harness: Harness) -> None:
    """Publish calls made while the publisher is still opening its connection (a fast typist, a
    burst of Enter presses) must each reach the broker, not wait for an event that never comes."""
    h = harness()
    bodies = ("First message.", "Second message..", "Third message...")
    tickets = [h.engine.publish(body) for body in bodies]
    for ticket in tickets:
        assert [r.outcome for r in ticket.wait(10)] == [PublishOutcome.SENT]
