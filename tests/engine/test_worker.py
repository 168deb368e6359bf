"""Workers against real brokers: live settings, kill modes, heartbeats, reconnects, threads."""

from __future__ import annotations

from collections.abc import Callable

import pika
import pytest

from tui_queue.engine import (
    AckTiming,
    KillMode,
    MessageLost,
    MessageReceived,
    MessageRequeued,
    QueueSpec,
    QueueType,
    Settled,
    WorkDone,
    WorkerKilled,
    WorkerSettings,
    WorkerSettingsChanged,
    WorkerState,
    WorkerStateChanged,
    WorkStarted,
)
from tui_queue.engine.connect import connect

from .conftest import BrokerUnderTest, EngineHarness

Harness = Callable[..., EngineHarness]


def assert_clean_books(h: EngineHarness, published: int) -> None:
    totals = h.engine.totals()
    assert totals.published == published
    assert totals.done == published, totals
    assert (totals.lost, totals.duplicates, totals.ready, totals.unacked) == (0, 0, 0, 0), totals
    assert totals.balanced


def test_prefetch_and_auto_ack_changes_lose_and_duplicate_nothing(harness: Harness) -> None:
    h = harness(seconds_per_dot=0.01)
    a = h.add(WorkerSettings(prefetch=0))
    b = h.add(WorkerSettings(prefetch=3))
    h.engine.publish([f"task {n}." for n in range(200)])
    changes = [
        {"prefetch": 1},
        {"prefetch": 7},
        {"auto_ack": True},
        {"prefetch": 0},
        {"auto_ack": False},
        {"prefetch": 2},
    ]
    for number, change in enumerate(changes):
        # Each change lands while tasks flow: wait for some progress between them.
        h.wait(lambda n=number: h.engine.totals().done >= 20 * (n + 1), "progress")
        h.engine.update_workers(a, **change)
        h.engine.update_workers(b, **change)
    h.wait(lambda: h.engine.totals().done == 200, "all 200 tasks done")
    assert_clean_books(h, 200)
    # basic.cancel never made the broker take anything back (pika's cancel race is handled)
    assert h.engine.totals().redelivered == 0
    resubscribed = [e for e in h.events.of_type(WorkerSettingsChanged) if e.resubscribed]
    assert len(resubscribed) == 2 * len(changes) - 2  # prefetch 0 under auto-ack needs none


def test_lower_prefetch_can_give_back_unstarted_deliveries(harness: Harness) -> None:
    h = harness(seconds_per_dot=0.05)
    a = h.add(WorkerSettings(prefetch=0))
    h.engine.pause(a)
    h.wait_state(a, WorkerState.PAUSED)
    h.engine.publish([f"task {n}." for n in range(6)])
    h.wait(lambda: h.engine.ledger.held_by(a) == 6, "a to hold all six")
    h.engine.set_prefetch(1, a, requeue_held=True)
    h.wait(lambda: h.engine.totals().requeued >= 6, "six given back")
    h.engine.resume(a)
    h.wait(lambda: h.engine.totals().done == 6, "all done")
    assert_clean_books(h, 6)
    assert h.engine.totals().redelivered >= 6


def test_crash_requeues_at_once_and_the_message_comes_back_redelivered(harness: Harness) -> None:
    h = harness(seconds_per_dot=0.2)
    a = h.add(WorkerSettings(prefetch=1))
    h.engine.publish("long task.....")  # 1 s of work
    h.events.wait_event(WorkStarted, lambda e: e.worker == a)
    h.engine.kill(a, KillMode.CRASH)
    killed = h.events.wait_event(WorkerKilled)
    assert (killed.requeued, killed.lost) == (1, 0)
    h.wait_state(a, WorkerState.KILLED)
    b = h.add(WorkerSettings(prefetch=1))
    received = h.events.wait_event(MessageReceived, lambda e: e.worker == b, timeout=5)
    assert received.redelivered
    h.wait(lambda: h.engine.totals().done == 1, "done by b")
    assert_clean_books(h, 1)


def test_ack_before_work_then_death_loses_the_task_in_progress(harness: Harness) -> None:
    h = harness(seconds_per_dot=0.2)
    a = h.add(WorkerSettings(prefetch=2, ack_timing=AckTiming.BEFORE_WORK))
    h.engine.publish(["one.....", "two....."])
    h.events.wait_event(WorkStarted, lambda e: e.worker == a and e.acked_before)
    h.wait(lambda: h.engine.ledger.held_by(a) == 2, "both delivered")
    h.engine.kill(a, KillMode.CRASH)
    killed = h.events.wait_event(WorkerKilled)
    # the one being worked was acked already: lost; the buffered one was not: requeued
    assert (killed.lost, killed.requeued) == (1, 1)
    lost = h.events.wait_event(MessageLost)
    assert lost.worker == a
    totals = h.engine.totals()
    assert (totals.lost, totals.ready) == (1, 1) and totals.balanced


def test_hung_worker_is_dropped_at_heartbeat_timeout(harness: Harness) -> None:
    h = harness(seconds_per_dot=0.1, worker_heartbeat=1)
    a = h.add(WorkerSettings(prefetch=1))
    b = h.add(WorkerSettings(prefetch=1))
    h.engine.pause(b)
    h.engine.publish(["hung.....", "spare"])
    h.events.wait_event(WorkStarted, lambda e: e.worker == a)
    h.engine.kill(a, KillMode.HANG)
    h.wait_state(a, WorkerState.HUNG)
    h.engine.resume(b)
    # b has "spare" or gets it; the hung task comes back only when the broker gives up on a
    # (heartbeat 1 s: two to three seconds of silence).
    back = h.events.wait_event(
        MessageReceived, lambda e: e.worker == b and e.redelivered, timeout=15
    )
    requeued = h.events.wait_event(MessageRequeued, lambda e: e.seq == back.seq)
    assert requeued.worker == a
    h.wait(lambda: h.engine.totals().done == 2, "both done")
    h.engine.revive(a)
    h.wait_state(a, WorkerState.IDLE)
    assert_clean_books(h, 2)


def test_heartbeats_are_answered_during_a_long_task(harness: Harness) -> None:
    h = harness(seconds_per_dot=0.5, worker_heartbeat=1)
    a = h.add(WorkerSettings(prefetch=1))
    h.engine.publish("a long one.......")  # 3.5 s, more than the 2-3 s a silent peer is given
    h.wait(lambda: h.engine.totals().done == 1, "the long task", timeout=15)
    states = [e.state for e in h.events.of_type(WorkerStateChanged) if e.worker == a]
    assert WorkerState.RECONNECTING not in states
    assert_clean_books(h, 1)


def test_cancel_only_keeps_what_it_holds_and_revive_consumes_again(harness: Harness) -> None:
    h = harness(seconds_per_dot=0.1)
    a = h.add(WorkerSettings(prefetch=2))
    h.engine.publish(["one..", "two.."])
    h.wait(lambda: h.engine.ledger.held_by(a) == 2, "a holds two")
    h.engine.kill(a, KillMode.CANCEL)
    h.events.wait_event(WorkerKilled)
    h.engine.publish(["three", "four"])
    h.wait(lambda: h.engine.totals().done == 2, "a finishes what it held")
    h.wait_state(a, WorkerState.CANCELLED)
    ready, consumers = h.engine.passive_declare()
    assert (ready, consumers) == (2, 0)
    h.engine.revive(a)
    h.wait(lambda: h.engine.totals().done == 4, "a consumes again")
    assert_clean_books(h, 4)


def test_pause_holds_and_resume_works(harness: Harness) -> None:
    h = harness(seconds_per_dot=0.01)
    a = h.add(WorkerSettings(prefetch=1))
    h.engine.pause(a)
    h.wait_state(a, WorkerState.PAUSED)
    h.engine.publish(["x.", "y."])
    h.wait(lambda: h.engine.ledger.held_by(a) == 1, "one delivered")
    assert h.engine.totals().done == 0
    h.engine.resume(a)
    h.wait(lambda: h.engine.totals().done == 2, "both done")
    assert_clean_books(h, 2)


def test_removing_a_busy_worker_requeues_its_task(harness: Harness) -> None:
    h = harness(seconds_per_dot=0.2)
    a = h.add(WorkerSettings(prefetch=1))
    h.engine.publish("busy.....")
    h.events.wait_event(WorkStarted, lambda e: e.worker == a)
    h.engine.remove_worker(a)
    assert a not in h.engine.worker_names()
    b = h.add(WorkerSettings(prefetch=1))
    h.events.wait_event(WorkDone, lambda e: e.worker == b, timeout=10)
    assert_clean_books(h, 1)


def test_external_messages_and_foreign_consumers_are_tracked(
    harness: Harness, engine_broker: BrokerUnderTest, queue_name: str
) -> None:
    h = harness(seconds_per_dot=0.01)
    a = h.add(WorkerSettings(prefetch=1))
    # the tutorial's new_task.py: no message id
    conn = connect(engine_broker.url)
    channel = conn.channel()
    channel.basic_publish("", queue_name, b"from outside.", pika.BasicProperties(delivery_mode=2))
    h.wait(
        lambda: (t := h.engine.totals()).external_done == 1 and t.external_held == 0,
        "the external task done and acked",
    )
    received = h.events.wait_event(MessageReceived)
    assert received.external and received.message_id is None and received.worker == a
    totals = h.engine.totals()
    assert (totals.published, totals.external_received, totals.external_held) == (0, 1, 0)
    # a consumer that is not ours shows in the broker's count
    channel.basic_consume(queue_name, lambda *_args: None)
    _ready, consumers = h.engine.passive_declare()
    assert consumers == 2
    conn.close()


def test_redeclare_to_quorum_and_redelivery_carries_x_delivery_count(
    harness: Harness, queue_name: str
) -> None:
    h = harness(seconds_per_dot=0.2)
    a = h.add(WorkerSettings(prefetch=1))
    # classic -> quorum: a delete and a declare; the worker, cancelled by the broker, follows
    h.engine.redeclare_queue(QueueSpec(name=queue_name, queue_type=QueueType.QUORUM))
    h.wait(lambda: h.engine.passive_declare()[1] == 1, "the worker to consume the new queue")
    h.engine.publish("quorum.....")
    first = h.events.wait_event(MessageReceived, lambda e: e.worker == a)
    assert first.delivery_count is None and not first.redelivered
    h.events.wait_event(WorkStarted, lambda e: e.worker == a)
    h.engine.kill(a, KillMode.CRASH)
    h.events.wait_event(WorkerKilled)
    h.engine.revive(a)
    again = h.events.wait_event(MessageReceived, lambda e: e.redelivered, timeout=10)
    assert again.delivery_count == 1
    h.wait(lambda: h.engine.totals().done == 1, "done")


@pytest.mark.slow
def test_workers_reconnect_by_themselves_after_a_broker_restart(harness: Harness) -> None:
    h = harness(seconds_per_dot=0.01)
    a = h.add(WorkerSettings(prefetch=1))
    h.engine.publish("at work when the broker goes" + "." * 100)  # 1 s: still at it
    h.events.wait_event(WorkStarted, lambda e: e.worker == a)
    h.engine.restart_broker(kill=True)
    h.events.wait_event(
        WorkerStateChanged, lambda e: e.worker == a and e.state is WorkerState.RECONNECTING
    )
    h.wait_state(a, WorkerState.IDLE, timeout=30)
    h.engine.publish("after the restart.")
    h.events.wait_event(WorkDone, lambda e: e.body == "after the restart.", timeout=30)
    # The books released the task at work when the broker went (before the worker noticed):
    # the worker still settles its own record of it. (Whether the broker kept the message is
    # the durability tests' business: RabbitMQ may lose an unconfirmed one to a SIGKILL.)
    first = h.engine.recent_tasks(a).view().received[0]
    assert first.body.startswith("at work when the broker goes")
    assert first.settled is Settled.REQUEUED and not first.finished


def test_revive_after_a_hang_never_works_what_the_dead_connection_held(harness: Harness) -> None:
    """Deliveries the broker pushed to a hung worker were never read by it. On revive they must
    not be booked or worked: their delivery tags belong to the dead channel, and an ack with such
    a tag on the fresh channel would ack another message or close the channel."""
    h = harness(seconds_per_dot=0.01)
    a = h.add(WorkerSettings(prefetch=0))
    h.engine.kill(a, KillMode.HANG)
    h.wait_state(a, WorkerState.HUNG)
    h.engine.publish([f"task {n}." for n in range(20)]).wait(10)
    h.wait(lambda: h.engine.passive_declare() == (0, 1), "the broker to push all 20 to a")
    assert h.engine.totals().delivered == 0  # a hung worker reads nothing
    h.engine.revive(a)
    h.wait(lambda: h.engine.totals().done == 20, "all 20 done after the revive")
    h.wait(lambda: h.engine.totals().unacked == 0, "every ack in")
    assert_clean_books(h, 20)
    assert h.engine.passive_declare() == (0, 1)
    reasons = [e.reason for e in h.events.of_type(WorkerStateChanged) if e.worker == a]
    assert not any(reason.startswith("connection lost") for reason in reasons), reasons


def test_a_hung_auto_ack_worker_loses_what_the_broker_pushed_to_it(harness: Harness) -> None:
    """Under auto-ack the broker forgets a message once it has sent it: what it pushed to a hung
    worker is lost for real, and the books count each one when the hung connection is let go
    (never leaving them 'ready' while the broker no longer has them)."""
    h = harness(seconds_per_dot=0.01)
    a = h.add(WorkerSettings(auto_ack=True))
    h.engine.kill(a, KillMode.HANG)
    h.wait_state(a, WorkerState.HUNG)
    h.engine.publish([f"task {n}." for n in range(20)]).wait(10)
    h.wait(lambda: h.engine.passive_declare() == (0, 1), "the broker to push all 20 to a")
    h.engine.revive(a)
    h.wait_state(a, WorkerState.IDLE)
    totals = h.engine.totals()
    assert (totals.lost, totals.ready, totals.in_hand, totals.done) == (20, 0, 0, 0), totals
    assert totals.balanced
    assert len([e for e in h.events.of_type(MessageLost) if e.worker == a]) == 20


def test_a_crash_under_auto_ack_in_a_flood_books_every_delivery_it_read(harness: Harness) -> None:
    """A crash in the middle of an auto-ack flood: every delivery the worker's connection read,
    dispatched or not, ends up done or counted lost; nothing stays in hand or unacked. (What the
    broker itself still had in its send buffer when it dropped the connection is discarded unseen:
    RabbitMQ closes with SO_LINGER 0. The books can only keep those 'ready'.)"""
    h = harness(seconds_per_dot=0.001)
    a = h.add(WorkerSettings(auto_ack=True))
    count = 5000
    h.engine.publish([f"task {n}." for n in range(count)])
    h.wait(lambda: h.engine.totals().delivered >= 200, "the flood to reach a")
    h.engine.kill(a, KillMode.CRASH)
    killed = h.events.wait_event(WorkerKilled)
    h.add(WorkerSettings(prefetch=50))
    # b holds 50 unacked until the queue is drained: both zero only once everything has settled
    settled = h.events.wait_for(
        lambda: (
            (t := h.engine.totals()).done + t.lost == t.delivered and t.unacked == t.in_hand == 0
        ),
        30,
    )
    totals = h.engine.totals()
    assert settled, totals
    assert totals.lost == killed.lost >= 1, (totals, killed)
    assert totals.duplicates == 0 and totals.balanced, totals
    assert h.engine.passive_declare()[0] == 0


def test_recent_tasks_follow_each_delivery_and_settle_as_the_books_do(harness: Harness) -> None:
    """A worker's own record of its latest tasks (what the dashboard draws from in a flood):
    in delivery order, bounded, finished when done, and requeued or lost when the worker dies,
    exactly as the ledger settled them."""
    h = harness(seconds_per_dot=0.2, recent_length=3)
    a = h.add(WorkerSettings(prefetch=2, ack_timing=AckTiming.BEFORE_WORK))
    h.engine.publish(["one", "two", "three", "four"])  # zero work: done inside the delivery
    # WorkDone comes after the worker's record is updated (the ledger's count comes before).
    h.events.wait_event(WorkDone, lambda e: e.body == "four")
    recent = h.engine.recent_tasks(a)
    tasks = recent.view().received
    assert [t.body for t in tasks] == ["two", "three", "four"]  # the last three only
    assert all(t.finished and t.settled is None and not t.redelivered for t in tasks)
    version = recent.version
    h.engine.publish(["five.....", "six....."])
    h.events.wait_event(WorkStarted, lambda e: e.worker == a and e.body == "five.....")
    h.wait(lambda: h.engine.ledger.held_by(a) == 2, "both delivered")
    assert recent.version > version
    five, six = recent.view().received[-2:]
    assert five.started_at is not None and five.duration == pytest.approx(1.0)
    assert not five.finished and six.started_at is None
    h.engine.kill(a, KillMode.CRASH)
    killed = h.events.wait_event(WorkerKilled)
    assert (killed.lost, killed.requeued) == (1, 1)
    # five was acked before its work: lost with the worker; six was only buffered: requeued.
    assert (five.settled, six.settled) == (Settled.LOST, Settled.REQUEUED)
    assert not five.finished and not six.finished
    assert recent.view().planned_work == 0.0  # four zero-work tasks finished, nothing else


def test_recent_tasks_keep_the_task_at_work_behind_a_deep_prefetch(harness: Harness) -> None:
    """Auto-ack pushes the whole backlog at once: more deliveries than the worker lists. The
    task at work and the last finished are kept apart, so neither scrolls out behind them."""
    h = harness(seconds_per_dot=0.5, recent_length=3)
    a = h.add(WorkerSettings(auto_ack=True))
    h.engine.publish([f"task {n}." for n in range(1, 9)])  # 0.5 s each
    h.events.wait_event(WorkStarted, lambda e: e.body == "task 1.")
    h.wait(lambda: h.engine.ledger.held_by(a) == 8, "all eight pushed to a")
    recent = h.engine.recent_tasks(a).view()
    assert [t.body for t in recent.received] == ["task 6.", "task 7.", "task 8."]
    assert recent.current is not None and recent.current.body == "task 1."
    h.events.wait_event(WorkDone, lambda e: e.body == "task 8.", timeout=20)
    recent = h.engine.recent_tasks(a).view()
    assert [t.body for t in recent.finished] == ["task 6.", "task 7.", "task 8."]
    assert recent.current is None and recent.planned_work == pytest.approx(4.0)
