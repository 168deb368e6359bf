"""The UI's pure parts: the model folded from events, and the bridge that merges bursts."""

from __future__ import annotations

import threading

from tui_queue.engine import (
    KillMode,
    MessageLost,
    MessageReceived,
    MessageRequeued,
    WorkDone,
    WorkerAdded,
    WorkerKilled,
    WorkerSettings,
    WorkerState,
    WorkerStateChanged,
    WorkStarted,
)
from tui_queue.ui.bridge import EngineEventsReady, EventBridge
from tui_queue.ui.model import LabModel, Status, TaskEntry, TaskLog


def received(worker: str, seq: int | None, redelivered: bool = False, auto_ack: bool = False):
    return MessageReceived(
        worker=worker,
        message_id=None if seq is None else f"run.{seq}",
        seq=seq,
        body=f"task {seq}.",
        delivery_tag=1,
        redelivered=redelivered,
        delivery_count=None,
        auto_ack=auto_ack,
        external=seq is None,
        dots=1,
        duplicate_delivery=False,
    )


def started(worker: str, seq: int) -> WorkStarted:
    return WorkStarted(
        worker=worker,
        message_id=f"run.{seq}",
        seq=seq,
        body=f"task {seq}.",
        duration=0.5,
        acked_before=False,
    )


def done(worker: str, seq: int) -> WorkDone:
    return WorkDone(
        worker=worker,
        message_id=f"run.{seq}",
        seq=seq,
        body=f"task {seq}.",
        busy=0.5,
        duplicate=False,
    )


def test_a_task_log_keeps_the_last_entries_and_the_exact_total() -> None:
    log = TaskLog(limit=200)
    for seq in range(1, 301):
        log.add(TaskEntry(seq=seq, message_id=f"run.{seq}", body=""))
    assert len(log) == 200 and log.total == 300
    assert log.find("run.100") is None  # scrolled out, and forgotten
    found = log.find("run.300")
    assert found is not None and found.seq == 300


def test_the_model_follows_a_message_through_work_requeue_and_loss() -> None:
    model = LabModel()
    model.apply(WorkerAdded(worker="w1", settings=WorkerSettings()))
    model.apply(WorkerAdded(worker="w2", settings=WorkerSettings()))
    model.apply(received("w1", 1))
    model.apply(received("w1", 3))
    model.apply(started("w1", 1))
    w1, w2 = model.workers["w1"], model.workers["w2"]
    assert [e.status for e in w1.received] == [Status.WORKING, Status.WAITING]
    assert w1.current is not None and w1.current.entry.seq == 1
    # w1 dies: the broker takes both back, w2 gets them marked redelivered.
    model.apply(MessageRequeued(message_id="run.1", seq=1, worker="w1", reason="killed"))
    model.apply(MessageRequeued(message_id="run.3", seq=3, worker="w1", reason="killed"))
    model.apply(WorkerKilled(worker="w1", mode=KillMode.CRASH, requeued=2, lost=0))
    model.apply(WorkerStateChanged(worker="w1", state=WorkerState.KILLED))
    model.apply(received("w2", 1, redelivered=True))
    model.apply(started("w2", 1))
    model.apply(done("w2", 1))
    assert [e.status for e in w1.received] == [Status.REQUEUED, Status.REQUEUED]
    assert w1.current is None and w1.requeued == 2 and w1.killed_how is KillMode.CRASH
    assert w2.redelivered == 1 and w2.done.total == 1 and w2.work_seconds == 0.5
    assert next(iter(w2.done)).redelivered
    # An auto-acked message lost with its worker.
    model.apply(received("w2", 5, auto_ack=True))
    model.apply(MessageLost(message_id="run.5", seq=5, worker="w2", reason="killed"))
    assert list(w2.received)[-1].status is Status.LOST and w2.lost == 1


def test_messages_of_other_publishers_settle_when_their_worker_goes() -> None:
    model = LabModel()
    model.apply(received("w1", None))
    model.apply(received("w1", None, auto_ack=True))
    model.apply(WorkerStateChanged(worker="w1", state=WorkerState.RECONNECTING, reason="lost"))
    statuses = [e.status for e in model.workers["w1"].received]
    assert statuses == [Status.REQUEUED, Status.LOST]
    assert WorkerState.RECONNECTING in model.workers["w1"].states_seen


class CountingTarget:
    """Stands in for the app: counts the notices the bridge posts."""

    def __init__(self) -> None:
        self.posted = 0

    def post_message(self, message: object) -> bool:
        assert isinstance(message, EngineEventsReady)
        self.posted += 1
        return True


def test_a_burst_from_many_threads_becomes_one_notice_and_slices() -> None:
    target = CountingTarget()
    bridge = EventBridge(target, slice_size=1_000)  # type: ignore[arg-type]

    def flood() -> None:
        for seq in range(1_000):
            bridge(received("w1", seq))

    threads = [threading.Thread(target=flood) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert target.posted == 1  # nobody took anything yet: one notice stands for all 5,000
    taken = 0
    more = True
    while more:
        events, more = bridge.take()
        taken += len(events)
        assert len(events) <= 1_000
    assert taken == 5_000 and bridge.received == 5_000
    # Just after a hand-over no notice is posted: the refresh tick takes the event.
    bridge(received("w1", 1))
    assert target.posted == 1
    assert len(bridge.take()[0]) == 1


def test_after_a_quiet_spell_the_first_event_wakes_the_ui_at_once() -> None:
    target = CountingTarget()
    bridge = EventBridge(target, quiet=0.0)  # type: ignore[arg-type]
    bridge(received("w1", 1))
    bridge.take()
    bridge(received("w1", 2))
    assert target.posted == 2
