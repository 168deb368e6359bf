"""A worker's most recent tasks, kept by the worker itself for readers that skip its events.

Following every per-message event costs the engine threads (the events must be built) and the
reader (it must fold them). A dashboard in a flood of thousands of tasks a second wants only the
last few dozen of each worker and exact totals (the ledger has those): it reads `RecentTasks`
when it draws, and the worker pays one small object and an append or two per message.

Only the worker's thread writes, and it bumps the version after each change. Other threads read
`view()`: the version first, then copies of the deques (retried if a garbage collection in the
middle of a copy let the worker append), so everything the version counts is in the copy. Each
field is a single attribute read, so a reader may see one field of a task before a change and
another after it; the change bumped the version, so the next read sees it whole.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from tui_queue.engine.ledger import Key


class Settled(StrEnum):
    """How a task left its worker without being finished there."""

    REQUEUED = "requeued"  # the broker took it back (the worker's connection went, a give-back)
    LOST = "lost"  # gone with the worker: auto-acked or acked before the work, never finished


class RecentTask:
    """One delivery to the worker, and how far it got. Read-only outside the worker thread."""

    __slots__ = (
        "auto_ack",
        "body",
        "duplicate",
        "duration",
        "external",
        "finished",
        "key",
        "message_id",
        "redelivered",
        "seq",
        "settled",
        "started_at",
    )

    def __init__(
        self,
        key: Key,
        seq: int | None,
        message_id: str | None,
        body: str,
        redelivered: bool,
        external: bool,
        auto_ack: bool,
        duplicate: bool,
    ) -> None:
        self.key = key
        self.seq = seq
        self.message_id = message_id
        self.body = body  # a preview, as in events
        self.redelivered = redelivered
        self.external = external
        self.auto_ack = auto_ack
        self.duplicate = duplicate  # delivered (or finished) after it had been finished before
        self.started_at: float | None = None  # time.monotonic() when its work began
        self.duration = 0.0  # planned seconds of work, once started
        self.finished = False
        self.settled: Settled | None = None


@dataclass(frozen=True, slots=True)
class RecentView:
    """What a reader gets, as of `version` or later: the last tasks received and the last
    finished (oldest first), the one at work, and the planned work of every task finished."""

    received: tuple[RecentTask, ...]
    finished: tuple[RecentTask, ...]
    current: RecentTask | None
    version: int
    planned_work: float


class RecentTasks:
    """The last `limit` tasks delivered to one worker and the last `limit` it finished.

    Two lists, not one: a worker with a deep prefetch (or auto-ack) holds more than `limit`
    deliveries, and the task at work and the last finished must not scroll out behind them."""

    def __init__(self, limit: int) -> None:
        self._received: deque[RecentTask] = deque(maxlen=limit)
        self._finished: deque[RecentTask] = deque(maxlen=limit)
        self._current: RecentTask | None = None
        # Bumped by the worker after every change: a reader redraws only when it moved.
        self.version = 0
        # Planned seconds of work (dots x seconds per dot) of every task it finished, recent
        # or not: the ledger counts the seconds actually spent, which jitter.
        self.planned_work = 0.0

    # --- the worker thread --------------------------------------------------------------------

    def received(self, task: RecentTask) -> None:
        self._received.append(task)
        self.version += 1

    def started(self, task: RecentTask, at: float, duration: float) -> None:
        task.duration = duration
        task.started_at = at
        self._current = task
        self.version += 1

    def finished(self, task: RecentTask, duplicate: bool) -> None:
        task.duplicate = task.duplicate or duplicate
        task.finished = True
        self._finished.append(task)
        if self._current is task:
            self._current = None
        self.planned_work += task.duration
        self.version += 1

    def given_back(self, task: RecentTask) -> None:
        task.settled = Settled.REQUEUED
        self.version += 1

    def settle_unfinished(self, requeued: set[Key], lost: set[Key]) -> None:
        """The worker's connection is gone: whatever it still held is settled, as the books
        say; what the books had released already (a broker restart, a hung worker's message
        given to another) went back to the queue, unless the broker had forgotten it."""
        current = self._current
        # The task at work too: behind a deep prefetch it may have scrolled out of the list.
        for task in (*self._received, *((current,) if current is not None else ())):
            if task.finished or task.settled is not None:
                continue
            if task.key in lost:
                task.settled = Settled.LOST
            elif task.key in requeued or not task.auto_ack:
                task.settled = Settled.REQUEUED
            else:
                task.settled = Settled.LOST
        self._current = None
        self.version += 1

    # --- any thread ---------------------------------------------------------------------------

    def view(self) -> RecentView:
        while True:
            version = self.version
            try:
                received, finished = tuple(self._received), tuple(self._finished)
            except RuntimeError:  # "deque mutated during iteration": copy again
                continue
            return RecentView(received, finished, self._current, version, self.planned_work)
