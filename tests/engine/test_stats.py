"""Queue stats from the management API on both brokers, and the fallback without it."""

from __future__ import annotations

from collections.abc import Callable

from tui_queue.engine import StatsSource, StatsUpdated, WorkerSettings

from .conftest import BrokerUnderTest, EngineHarness

Harness = Callable[..., EngineHarness]


def next_stats(h: EngineHarness, match: Callable[[StatsUpdated], bool]) -> StatsUpdated:
    found: list[StatsUpdated] = []

    def on_event(event: object) -> None:
        if isinstance(event, StatsUpdated) and match(event):
            found.append(event)

    with h.engine.bus.subscribe(on_event):
        h.wait(lambda: bool(found), "a matching stats sample", timeout=20)
    return found[0]


def test_management_api_is_the_source_on_both_brokers(
    harness: Harness, engine_broker: BrokerUnderTest, queue_name: str
) -> None:
    h = harness()
    h.engine.publish(["one", "two"]).wait(10)
    sample = next_stats(h, lambda e: e.queue.source is StatsSource.MANAGEMENT)
    stats = sample.queue
    assert stats.queue == queue_name
    assert stats.queue_type == "classic" and stats.durable is True
    assert stats.ready is not None and stats.unacked is not None and stats.consumers is not None
    assert stats.publish_rate is not None and stats.publish_rate >= 0
    assert sample.totals.published == 2


def test_fallback_to_passive_declare_says_so(harness: Harness) -> None:
    h = harness(management_url="http://127.0.0.1:1", seconds_per_dot=1.0)
    a = h.add(WorkerSettings(prefetch=1))
    h.engine.publish(["held.....", "r1", "r2"]).wait(10)
    h.wait(lambda: h.engine.ledger.held_by(a) == 1, "one held")
    sample = next_stats(
        h, lambda e: e.queue.source is StatsSource.PASSIVE_DECLARE and e.queue.ready == 2
    )
    stats = sample.queue
    assert "no management API at http://127.0.0.1:1" in stats.detail
    assert "ledger" in stats.detail
    assert (stats.unacked, stats.consumers) == (1, 1)
    assert h.engine.stats() is not None
