"""What the dashboard shows, on the UI thread. No Textual in here.

Three sources feed it: engine events (workers, states, settings, queue, broker, errors; requeues
and losses mark list entries), each worker's recent tasks (`sync_tasks`: the Received and Done
lists and the current task), and the ledger's per-worker counts (`set_counts`: every total and
counter). The app pulls the last two at the refresh tick, so a flood of messages costs the
model a copy of a few bounded lists per frame, not a fold of every event; lists are bounded (the
last `list_length` entries) and the totals beside them exact.

Widgets read this model at the refresh tick; nothing else writes it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tui_queue.engine import (
    BrokerState,
    BrokerStateChanged,
    EngineError,
    Event,
    KillMode,
    LedgerTotals,
    MessageLost,
    MessageRequeued,
    QueuePurged,
    QueueRedeclared,
    QueueSpec,
    QueueStats,
    RecentTask,
    RecentTasks,
    RecentView,
    StatsUpdated,
    WorkerAdded,
    WorkerCounts,
    WorkerKilled,
    WorkerRemoved,
    WorkerSettings,
    WorkerSettingsChanged,
    WorkerState,
    WorkerStateChanged,
)

BACKLOG_SAMPLES = 120
LOG_LENGTH = 500
# States in which a worker holds nothing any more: what it had was requeued or lost.
_GONE = frozenset({WorkerState.KILLED, WorkerState.RECONNECTING, WorkerState.STOPPED})


class Status(StrEnum):
    """Where a received message stands, from the receiving worker's point of view."""

    WAITING = "waiting"  # delivered, not started (prefetched)
    WORKING = "working"
    DONE = "done"
    REQUEUED = "requeued"  # the broker took it back from this worker
    LOST = "lost"  # gone with this worker, never finished


@dataclass(slots=True)
class TaskEntry:
    seq: int | None
    message_id: str | None
    body: str
    redelivered: bool = False
    external: bool = False
    auto_ack: bool = False
    status: Status = Status.WAITING
    duplicate: bool = False
    work: float = 0.0  # planned seconds of work (dots x seconds per dot), once started


class TaskLog:
    """The last `limit` entries of a list, its exact total, and a lookup by message id."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.entries: deque[TaskEntry] = deque()
        self.total = 0  # from the ledger's counts: every entry ever, not only those kept
        self._by_id: dict[str, TaskEntry] = {}

    def reset(self, entries: Sequence[TaskEntry]) -> None:
        """The entries now on the list (the last `limit` kept); the total is left as it is."""
        kept = entries[-self.limit :]
        self.entries = deque(kept)
        self._by_id = {entry.message_id: entry for entry in kept if entry.message_id is not None}

    def find(self, message_id: str | None) -> TaskEntry | None:
        if message_id is None:
            return None
        return self._by_id.get(message_id)

    def __iter__(self) -> Iterator[TaskEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(slots=True)
class CurrentWork:
    entry: TaskEntry
    started: float  # time.monotonic() on the worker's clock (same process)
    duration: float


@dataclass(slots=True)
class WorkerView:
    name: str
    settings: WorkerSettings
    received: TaskLog
    done: TaskLog
    state: WorkerState = WorkerState.CONNECTING
    reason: str = ""
    current: CurrentWork | None = None
    work_seconds: float = 0.0  # planned work (dots x seconds per dot) of the tasks it finished
    killed_how: KillMode | None = None
    states_seen: set[WorkerState] = field(default_factory=set)
    revision: int = 0
    # The entry shown for each of the worker's recent tasks, and the tasks' version last synced.
    entries_by_task: dict[RecentTask, TaskEntry] = field(default_factory=dict)
    tasks_source: RecentTasks | None = None  # the worker's, read at each tick (the app's)
    tasks_version: int = -1
    counts: WorkerCounts | None = None  # the ledger's, as last read: the counters below

    @property
    def acked(self) -> int:
        return self.counts.acked if self.counts else 0

    @property
    def redelivered(self) -> int:
        return self.counts.redelivered if self.counts else 0

    @property
    def requeued(self) -> int:
        return self.counts.requeued if self.counts else 0

    @property
    def lost(self) -> int:
        return self.counts.lost if self.counts else 0

    @property
    def duplicates(self) -> int:
        return self.counts.duplicates if self.counts else 0

    def received_seqs(self) -> list[int | None]:
        return [entry.seq for entry in self.received]


class LabModel:
    def __init__(self, list_length: int = 200) -> None:
        self.list_length = list_length
        self.workers: dict[str, WorkerView] = {}
        self.queue_stats: QueueStats | None = None
        self.queue_spec: QueueSpec | None = None
        self.totals: LedgerTotals | None = None
        self.backlog: deque[float] = deque(maxlen=BACKLOG_SAMPLES)
        self.broker_state = BrokerState.UP
        self.broker_detail = ""
        self.log: deque[Event] = deque(maxlen=LOG_LENGTH)
        self.log_total = 0
        self.notices: list[tuple[str, str]] = []  # (severity, text) for the app to show once
        # Bumped on any change; `layout_revision` only when workers come or go.
        self.revision = 0
        self.layout_revision = 0
        self.queue_revision = 0
        # Per-message events (published, received, started, done, acked) only go to the log:
        # the lists and counters come from sync_tasks and set_counts.
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            MessageRequeued: self._requeued,
            MessageLost: self._lost,
            StatsUpdated: self._stats,
            WorkerStateChanged: self._state,
            WorkerSettingsChanged: self._settings,
            WorkerAdded: self._added,
            WorkerRemoved: self._removed,
            WorkerKilled: self._killed,
            BrokerStateChanged: self._broker,
            QueuePurged: self._purged,
            QueueRedeclared: self._redeclared,
            EngineError: self._error,
        }

    def apply(self, event: Event) -> None:
        self.apply_all([event])

    def apply_all(self, events: list[Event]) -> None:
        """Fold a batch of events in, and log all but the stats."""
        handlers = self._handlers
        for event in events:
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event)
        self.revision += len(events)
        # Only the last LOG_LENGTH can stay in the log: append just those.
        for event in events[-LOG_LENGTH:]:
            if type(event) is not StatsUpdated:
                self.log.append(event)
        logged = sum(1 for event in events if type(event) is not StatsUpdated)
        self.log_total += logged

    def take_notices(self) -> list[tuple[str, str]]:
        notices, self.notices = self.notices, []
        return notices

    # --- workers ------------------------------------------------------------------------------

    def _view(self, name: str) -> WorkerView:
        view = self.workers.get(name)
        if view is None:
            # An event for a worker we never saw added (subscribed late): follow it from now.
            view = self._add_view(name, WorkerSettings())
        view.revision += 1
        return view

    def _add_view(self, name: str, settings: WorkerSettings) -> WorkerView:
        view = WorkerView(
            name=name,
            settings=settings,
            received=TaskLog(self.list_length),
            done=TaskLog(self.list_length),
        )
        self.workers[name] = view
        self.layout_revision += 1
        return view

    def _added(self, event: WorkerAdded) -> None:
        if event.worker not in self.workers:
            self._add_view(event.worker, event.settings)

    def _removed(self, event: WorkerRemoved) -> None:
        if self.workers.pop(event.worker, None) is not None:
            self.layout_revision += 1

    def _state(self, event: WorkerStateChanged) -> None:
        view = self._view(event.worker)
        view.state = event.state
        view.reason = event.reason
        view.states_seen.add(event.state)
        if event.state in _GONE:
            view.current = None  # what it held, the worker settled before it said so
        elif event.state is not WorkerState.HUNG:
            view.killed_how = None

    def _settings(self, event: WorkerSettingsChanged) -> None:
        self._view(event.worker).settings = event.settings

    def _killed(self, event: WorkerKilled) -> None:
        view = self._view(event.worker)
        view.killed_how = event.mode

    # --- messages -----------------------------------------------------------------------------

    def sync_tasks(self, name: str, recent: RecentView) -> None:
        """The worker's recent tasks as its lists and current task, and its planned work."""
        view = self.workers.get(name) or self._add_view(name, WorkerSettings())
        if recent.version == view.tasks_version:
            return
        view.tasks_version = recent.version
        view.work_seconds = recent.planned_work
        known = view.entries_by_task
        shown: dict[RecentTask, TaskEntry] = {}

        def entry_for(task: RecentTask) -> TaskEntry:
            entry = shown.get(task) or known.get(task)
            if entry is None:
                entry = TaskEntry(
                    seq=task.seq,
                    message_id=task.message_id,
                    body=task.body,
                    redelivered=task.redelivered,
                    external=task.external,
                    auto_ack=task.auto_ack,
                )
            entry.duplicate = task.duplicate
            entry.work = task.duration
            entry.status = _status(task, entry.status)
            shown[task] = entry
            return entry

        view.received.reset([entry_for(task) for task in recent.received])
        view.done.reset([entry_for(task) for task in recent.finished])
        current = recent.current
        view.current = None
        if current is not None and current.started_at is not None:
            entry = entry_for(current)
            if entry.status is Status.WORKING:  # the worker drops it when its connection goes
                view.current = CurrentWork(entry, current.started_at, current.duration)
        view.entries_by_task = shown
        view.revision += 1
        self.revision += 1

    def set_counts(self, counts: Iterable[WorkerCounts]) -> None:
        """The ledger's exact per-worker counts: every total and counter a panel shows."""
        for count in counts:
            view = self.workers.get(count.worker)
            if view is None or view.counts == count:
                continue
            view.counts = count
            view.received.total = count.received
            view.done.total = count.done
            view.revision += 1
            self.revision += 1

    def activity(self) -> int:
        """Deliveries plus finishes so far, by the last counts: how busy the workers are."""
        return sum(view.received.total + view.done.total for view in self.workers.values())

    def _requeued(self, event: MessageRequeued) -> None:
        self._mark_hung(event.worker, event.message_id, Status.REQUEUED)

    def _lost(self, event: MessageLost) -> None:
        if event.worker is not None:  # None: the broker lost it (a restart), or a purge
            self._mark_hung(event.worker, event.message_id, Status.LOST)

    def _mark_hung(self, worker: str, message_id: str | None, status: Status) -> None:
        """A hung worker's message went elsewhere: the worker, hung, cannot say so itself
        until it is revived or dropped (then it settles its own tasks, which counts more)."""
        view = self.workers.get(worker)
        if view is None or view.state is not WorkerState.HUNG:
            return
        entry = view.received.find(message_id)
        if entry is not None and entry.status in (Status.WAITING, Status.WORKING):
            entry.status = status
            view.revision += 1
        if view.current is not None and view.current.entry is entry:
            view.current = None

    # --- queue and broker ---------------------------------------------------------------------

    def _stats(self, event: StatsUpdated) -> None:
        self.queue_stats = event.queue
        self.totals = event.totals
        if event.queue.ready is not None:
            self.backlog.append(float(event.queue.ready))
        self.queue_revision += 1

    def _broker(self, event: BrokerStateChanged) -> None:
        self.broker_state = event.state
        self.broker_detail = event.detail
        self.queue_revision += 1

    def _purged(self, event: QueuePurged) -> None:
        self.notices.append(("information", f"purged {event.count} ready message(s)"))
        self.queue_revision += 1

    def _redeclared(self, event: QueueRedeclared) -> None:
        self.queue_spec = event.spec
        kind = event.spec.queue_type.value
        self.notices.append(("information", f"{event.spec.name} redeclared as a {kind} queue"))
        self.queue_revision += 1

    def _error(self, event: EngineError) -> None:
        self.notices.append(("error", f"{event.where}: {event.message}"))

    # --- reading ------------------------------------------------------------------------------

    def common_settings(self) -> WorkerSettings | None:
        """The settings every worker shares, or None when they differ (or there is no worker)."""
        settings = {view.settings for view in self.workers.values()}
        return settings.pop() if len(settings) == 1 else None


def _status(task: RecentTask, shown: Status) -> Status:
    """Where a recent task stands; a requeue or loss an event marked on a hung worker stands
    until the worker settles the task itself (or finishes it after all)."""
    if task.finished:
        return Status.DONE
    if task.settled is not None:
        return Status(task.settled.value)
    if shown in (Status.REQUEUED, Status.LOST):
        return shown
    return Status.WAITING if task.started_at is None else Status.WORKING
