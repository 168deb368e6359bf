"""What the dashboard shows, folded from engine events on the UI thread. No Textual in here.

Widgets read this model at the refresh tick; nothing else writes it. Lists are bounded (the last
`list_length` entries) while every total beside them counts each event exactly, so a flood costs
memory in proportion to the list length, not to the number of messages.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
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
    MessageAcked,
    MessageLost,
    MessagePublished,
    MessageReceived,
    MessageRequeued,
    PublishOutcome,
    QueuePurged,
    QueueRedeclared,
    QueueSpec,
    QueueStats,
    StatsUpdated,
    WorkDone,
    WorkerAdded,
    WorkerKilled,
    WorkerRemoved,
    WorkerSettings,
    WorkerSettingsChanged,
    WorkerState,
    WorkerStateChanged,
    WorkStarted,
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
        self.total = 0
        self._by_id: dict[str, TaskEntry] = {}

    def add(self, entry: TaskEntry) -> None:
        self.entries.append(entry)
        self.total += 1
        if entry.message_id is not None:
            self._by_id[entry.message_id] = entry
        if len(self.entries) > self.limit:
            old = self.entries.popleft()
            if old.message_id is not None and self._by_id.get(old.message_id) is old:
                del self._by_id[old.message_id]

    def find(self, message_id: str | None) -> TaskEntry | None:
        if message_id is None:
            return None
        return self._by_id.get(message_id)

    def first_with(self, status: Status, message_id: str | None) -> TaskEntry | None:
        """The oldest entry in `status` with this id (None matches messages without one)."""
        if message_id is not None:
            entry = self._by_id.get(message_id)
            return entry if entry is not None and entry.status is status else None
        for entry in self.entries:
            if entry.message_id is None and entry.status is status:
                return entry
        return None

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
    acked: int = 0
    redelivered: int = 0
    requeued: int = 0
    lost: int = 0
    duplicates: int = 0
    work_seconds: float = 0.0  # planned work (dots x seconds per dot) of the tasks it finished
    killed_how: KillMode | None = None
    states_seen: set[WorkerState] = field(default_factory=set)
    revision: int = 0

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
        self.published = 0
        self.publish_failures = 0
        self.notices: list[tuple[str, str]] = []  # (severity, text) for the app to show once
        # Bumped on any change; `layout_revision` only when workers come or go.
        self.revision = 0
        self.layout_revision = 0
        self.queue_revision = 0
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            MessageReceived: self._received,
            WorkStarted: self._started,
            WorkDone: self._done,
            MessageAcked: self._acked,
            MessagePublished: self._published,
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
        handler = self._handlers.get(type(event))
        if handler is None:
            return
        handler(event)
        self.revision += 1
        if not isinstance(event, StatsUpdated):
            self.log.append(event)
            self.log_total += 1

    def apply_all(self, events: list[Event]) -> None:
        """apply() for a batch, with the per-event work kept to the handler (floods)."""
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
            self._drop_held(view)
        elif event.state is not WorkerState.HUNG:
            view.killed_how = None

    def _settings(self, event: WorkerSettingsChanged) -> None:
        self._view(event.worker).settings = event.settings

    def _killed(self, event: WorkerKilled) -> None:
        view = self._view(event.worker)
        view.killed_how = event.mode

    def _drop_held(self, view: WorkerView) -> None:
        """The worker's connection is gone; anything still marked held (messages without our id,
        which requeue/lost events cannot name) went back to the queue or, if in hand, was lost."""
        view.current = None
        for entry in view.received:
            if entry.status in (Status.WAITING, Status.WORKING):
                entry.status = Status.LOST if entry.auto_ack else Status.REQUEUED

    # --- messages -----------------------------------------------------------------------------

    def _received(self, event: MessageReceived) -> None:
        view = self._view(event.worker)
        view.received.add(
            TaskEntry(
                seq=event.seq,
                message_id=event.message_id,
                body=event.body,
                redelivered=event.redelivered,
                external=event.external,
                auto_ack=event.auto_ack,
                duplicate=event.duplicate_delivery,
            )
        )
        if event.redelivered:
            view.redelivered += 1

    def _started(self, event: WorkStarted) -> None:
        view = self._view(event.worker)
        entry = view.received.first_with(Status.WAITING, event.message_id)
        if entry is None:  # scrolled out of the bounded list: keep showing the work anyway
            entry = TaskEntry(seq=event.seq, message_id=event.message_id, body=event.body)
        entry.status = Status.WORKING
        entry.work = event.duration
        view.current = CurrentWork(entry, event.at, event.duration)

    def _done(self, event: WorkDone) -> None:
        view = self._view(event.worker)
        current = view.current
        if current is not None and current.entry.message_id == event.message_id:
            entry: TaskEntry | None = current.entry
            view.current = None
        else:
            entry = view.received.first_with(Status.WORKING, event.message_id)
        if entry is None:
            entry = TaskEntry(
                seq=event.seq,
                message_id=event.message_id,
                body=event.body,
                external=event.seq is None,
            )
        # One entry in both lists: a message costs the model one object, not two.
        entry.status = Status.DONE
        entry.duplicate = entry.duplicate or event.duplicate
        view.done.add(entry)
        if event.duplicate:
            view.duplicates += 1
        view.work_seconds += entry.work

    def _acked(self, event: MessageAcked) -> None:
        self._view(event.worker).acked += 1

    def _requeued(self, event: MessageRequeued) -> None:
        view = self._view(event.worker)
        view.requeued += 1
        entry = view.received.find(event.message_id)
        if entry is not None and entry.status in (Status.WAITING, Status.WORKING):
            entry.status = Status.REQUEUED
        self._forget_current(view, event.message_id)

    def _lost(self, event: MessageLost) -> None:
        if event.worker is None:  # the broker lost it (restart without durability), or a purge
            return
        view = self._view(event.worker)
        view.lost += 1
        entry = view.received.find(event.message_id)
        if entry is not None:
            entry.status = Status.LOST
        self._forget_current(view, event.message_id)

    def _forget_current(self, view: WorkerView, message_id: str | None) -> None:
        if view.current is not None and view.current.entry.message_id == message_id:
            view.current = None

    def _published(self, event: MessagePublished) -> None:
        if event.outcome in (PublishOutcome.SENT, PublishOutcome.CONFIRMED):
            self.published += 1
        else:
            self.publish_failures += 1
            self.notices.append(("error", f"publish {event.outcome.value}: {event.detail}"))

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
