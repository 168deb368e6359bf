"""The UI's pure parts: the model (events, workers' recent tasks, ledger counts), and the bridge
that merges bursts."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from tui_queue.engine import (
    KillMode,
    MessageReceived,
    MessageRequeued,
    RecentTask,
    RecentView,
    Settled,
    WorkerAdded,
    WorkerCounts,
    WorkerKilled,
    WorkerSettings,
    WorkerState,
    WorkerStateChanged,
)
from tui_queue.ui.bridge import EngineEventsReady, EventBridge
from tui_queue.ui.model import LabModel, Status, TaskEntry, TaskLog
from tui_queue.ui.widgets.task_list import TaskList


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


def task(seq: int | None, auto_ack: bool = False, redelivered: bool = False) -> RecentTask:
    """A worker's record of one delivery, as the worker thread makes it."""
    return RecentTask(
        key=seq if seq is not None else ("x", 1),
        seq=seq,
        message_id=None if seq is None else f"run.{seq}",
        body=f"task {seq}.",
        redelivered=redelivered,
        external=seq is None,
        auto_ack=auto_ack,
        duplicate=False,
    )


def seen(tasks: Sequence[RecentTask], version: int) -> RecentView:
    """A reader's view of a worker that received `tasks`, as the worker keeps it."""
    finished = tuple(task for task in tasks if task.finished)
    at_work = [t for t in tasks if t.started_at is not None and not t.finished and not t.settled]
    work = sum(task.duration for task in finished)
    return RecentView(tuple(tasks), finished, at_work[-1] if at_work else None, version, work)


def counts(worker: str, **values: float) -> WorkerCounts:
    fields = dict.fromkeys(
        (
            "received",
            "redelivered",
            "done",
            "acked",
            "busy",
            "requeued",
            "lost",
            "duplicates",
            "external_received",
            "held",
        ),
        0,
    )
    fields.update(values)
    return WorkerCounts(worker=worker, **fields)  # type: ignore[arg-type]


def test_a_task_log_keeps_the_last_entries_and_finds_them_by_id() -> None:
    log = TaskLog(limit=200)
    log.reset([TaskEntry(seq=seq, message_id=f"run.{seq}", body="") for seq in range(1, 301)])
    assert len(log) == 200 and [entry.seq for entry in log][0] == 101
    assert log.find("run.100") is None  # scrolled out, and forgotten
    found = log.find("run.300")
    assert found is not None and found.seq == 300


def test_the_model_follows_a_message_through_work_requeue_and_loss() -> None:
    model = LabModel()
    model.apply(WorkerAdded(worker="w1", settings=WorkerSettings()))
    model.apply(WorkerAdded(worker="w2", settings=WorkerSettings()))
    first, third = task(1), task(3)
    first.started_at, first.duration = 100.0, 0.5
    model.sync_tasks("w1", seen((first, third), 2))
    w1, w2 = model.workers["w1"], model.workers["w2"]
    assert [e.status for e in w1.received] == [Status.WORKING, Status.WAITING]
    assert w1.current is not None and w1.current.entry.seq == 1
    assert w1.current.started == 100.0 and w1.current.duration == 0.5
    # The same version again changes nothing, even if a task moved meanwhile.
    first.finished = True
    model.sync_tasks("w1", seen((first, third), 2))
    assert w1.current is not None
    first.finished = False
    # w1 dies: it settles both as requeued; w2 gets #1 again, redelivered.
    model.apply(WorkerKilled(worker="w1", mode=KillMode.CRASH, requeued=2, lost=0))
    model.apply(WorkerStateChanged(worker="w1", state=WorkerState.KILLED))
    assert w1.current is None  # at once, before the next sync
    first.settled = third.settled = Settled.REQUEUED
    model.sync_tasks("w1", seen((first, third), 3))
    again = task(1, redelivered=True)
    again.started_at, again.duration, again.finished = 101.0, 0.5, True
    model.sync_tasks("w2", seen((again,), 1))
    model.set_counts(
        [
            counts("w1", received=2, requeued=2),
            counts("w2", received=1, done=1, redelivered=1),
        ]
    )
    assert [e.status for e in w1.received] == [Status.REQUEUED, Status.REQUEUED]
    assert w1.current is None and w1.requeued == 2 and w1.killed_how is KillMode.CRASH
    assert w2.redelivered == 1 and w2.done.total == 1 and w2.work_seconds == 0.5
    assert w2.received.total == 1 and next(iter(w2.done)).redelivered
    # One entry per task, in both lists.
    assert next(iter(w2.done)) is next(iter(w2.received))
    # An auto-acked message lost with its worker.
    fifth = task(5, auto_ack=True)
    fifth.settled = Settled.LOST
    model.sync_tasks("w2", seen((again, fifth), 2))
    assert list(w2.received)[-1].status is Status.LOST
    assert [e.seq for e in w2.done] == [1]


def test_only_a_hung_worker_takes_a_requeue_from_an_event() -> None:
    """A hung worker cannot say that the broker gave its message to another: the event marks
    the entry, and the mark stands across syncs. A live worker settles its own tasks: a late
    event (events come in slices) must not mark a newer delivery of the same message."""
    model = LabModel()
    held = task(7)
    held.started_at, held.duration = 50.0, 9.0
    model.sync_tasks("w1", seen((held,), 1))
    model.apply(MessageRequeued(message_id="run.7", seq=7, worker="w1", reason="late"))
    view = model.workers["w1"]
    assert [e.status for e in view.received] == [Status.WORKING] and view.current is not None
    model.apply(WorkerStateChanged(worker="w1", state=WorkerState.HUNG))
    model.apply(MessageRequeued(message_id="run.7", seq=7, worker="w1", reason="redelivered"))
    assert [e.status for e in view.received] == [Status.REQUEUED] and view.current is None
    model.sync_tasks("w1", seen((held,), 2))
    assert [e.status for e in view.received] == [Status.REQUEUED] and view.current is None


def test_the_task_at_work_and_the_last_finished_outlive_a_deep_prefetch() -> None:
    """Auto-ack (or a deep prefetch) fills the received list with waiting deliveries: the task
    at work and the finished ones come from the worker's own lists, not from that one."""
    model = LabModel(list_length=3)
    done_before, at_work = task(1), task(2)
    done_before.finished = True
    at_work.started_at, at_work.duration = 10.0, 2.0
    waiting = tuple(task(seq) for seq in range(3, 9))
    model.sync_tasks("w1", RecentView(waiting[-3:], (done_before,), at_work, 1, 0.0))
    view = model.workers["w1"]
    assert [e.seq for e in view.received] == [6, 7, 8]
    assert [e.seq for e in view.done] == [1]
    assert view.current is not None and view.current.entry.seq == 2


def test_the_lists_keep_the_last_entries_and_the_counts_stay_exact() -> None:
    model = LabModel(list_length=10)
    tasks = [task(seq) for seq in range(1, 31)]
    for item in tasks[:-1]:
        item.finished = True
    model.sync_tasks("w1", seen(tasks, 1))
    model.set_counts([counts("w1", received=3_000, done=2_999, acked=2_999)])
    view = model.workers["w1"]
    assert [e.seq for e in view.received] == list(range(21, 31))
    assert [e.seq for e in view.done] == list(range(20, 30))
    assert view.received.total == 3_000 and view.done.total == 2_999 and view.acked == 2_999
    assert view.received.find("run.30") is not None and view.received.find("run.20") is None
    assert model.activity() == 5_999


def test_a_worker_that_loses_its_connection_stops_showing_a_task_at_work_at_once() -> None:
    """Until the next sync, the state event alone clears the task at work; the statuses come
    from the worker's own settling (messages of other publishers included: no message id)."""
    model = LabModel()
    kept, in_hand, at_work = task(None), task(None, auto_ack=True), task(4)
    at_work.started_at, at_work.duration = 5.0, 3.0
    model.sync_tasks("w1", seen((kept, in_hand, at_work), 1))
    view = model.workers["w1"]
    assert view.current is not None and view.current.entry.seq == 4
    model.apply(WorkerStateChanged(worker="w1", state=WorkerState.RECONNECTING, reason="lost"))
    assert view.current is None
    kept.settled, in_hand.settled, at_work.settled = (
        Settled.REQUEUED,
        Settled.LOST,
        Settled.REQUEUED,
    )
    model.sync_tasks("w1", seen((kept, in_hand, at_work), 2))
    assert [e.status for e in view.received] == [Status.REQUEUED, Status.LOST, Status.REQUEUED]
    assert [e.external for e in view.received] == [True, True, False]
    assert view.current is None and WorkerState.RECONNECTING in view.states_seen


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


def test_a_list_title_keeps_its_total_on_one_line_however_narrow() -> None:
    """In a flood the totals grow long: the title drops "last N" before it would wrap."""
    tasks = TaskList("Received", in_done_list=False)
    tasks.show(
        [TaskEntry(seq=seq, message_id=None, body="Hello World!") for seq in range(6)], 22_674
    )
    wide = tasks.lines(width=40, height=4)
    assert wide[0].plain == "Received 22,674  last 3"
    narrow = tasks.lines(width=17, height=4)
    assert narrow[0].plain == "Received 22,674"
    assert all(len(line.plain) <= 17 for line in narrow) and len(narrow) == 4
