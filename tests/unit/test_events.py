"""The event bus and the waiter tests and scenarios use instead of sleeping."""

from __future__ import annotations

import threading

import pytest

from tui_queue.engine.events import (
    EngineError,
    Event,
    EventBus,
    EventWaiter,
    WorkerState,
    WorkerStateChanged,
)


def test_subscribers_get_events_and_can_leave() -> None:
    bus = EventBus()
    seen: list[Event] = []
    subscription = bus.subscribe(seen.append)
    assert bus.has_subscribers
    event = EngineError(where="test", message="one")
    bus.emit(event)
    subscription.close()
    bus.emit(EngineError(where="test", message="two"))
    assert seen == [event] and not bus.has_subscribers


def test_a_failing_subscriber_does_not_stop_the_others() -> None:
    bus = EventBus()
    seen: list[Event] = []

    def broken(_event: Event) -> None:
        raise RuntimeError("boom")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    bus.emit(EngineError(where="test", message="x"))
    assert len(seen) == 1


def test_waiter_wakes_on_events_from_other_threads() -> None:
    bus = EventBus()
    counter = {"n": 0}
    with EventWaiter(bus) as waiter:

        def produce() -> None:
            for _ in range(5):
                counter["n"] += 1
                bus.emit(WorkerStateChanged(worker="w1", state=WorkerState.IDLE))

        thread = threading.Thread(target=produce)
        thread.start()
        assert waiter.wait_for(lambda: counter["n"] == 5, timeout=5)
        thread.join()
        found = waiter.wait_event(WorkerStateChanged, lambda e: e.worker == "w1", timeout=1)
        assert found.state is WorkerState.IDLE
        assert len(waiter.of_type(WorkerStateChanged)) == 5
        with pytest.raises(TimeoutError):
            waiter.wait_event(EngineError, timeout=0.05)
    assert not bus.has_subscribers


def test_waiter_keeps_only_what_it_is_asked_to() -> None:
    bus = EventBus()
    with EventWaiter(bus, keep=lambda e: isinstance(e, EngineError), maxlen=2) as waiter:
        for n in range(3):
            bus.emit(EngineError(where="t", message=str(n)))
        bus.emit(WorkerStateChanged(worker="w", state=WorkerState.IDLE))
        assert [e.message for e in waiter.of_type(EngineError)] == ["1", "2"]
        assert len(waiter.events) == 2
        waiter.clear()
        assert waiter.events == []


def test_events_are_timestamped_slotted_records() -> None:
    event = EngineError(where="w", message="m")
    assert event.at > 0
    with pytest.raises(AttributeError):
        event.nonsense = 1  # type: ignore[attr-defined]
