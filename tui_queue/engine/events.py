"""The typed events the engine emits, and the one thread-safe point to subscribe to them.

Subscribers are called on the engine thread that emitted the event (a worker, the publisher, the
stats poller), in emission order for that thread. They must be quick and thread-safe: the
dashboard forwards with `post_message`, the headless runner records into an `EventWaiter`.

Events are read-only by contract, and one instance goes to every subscriber: never modify one.
They are not frozen dataclasses only because frozen ones cost three times as much to build, and a
worker builds four per message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, TypeVar

from tui_queue.engine.config import KillMode, QueueSpec, WorkerSettings

if TYPE_CHECKING:
    from tui_queue.engine.ledger import LedgerTotals, Released, WorkerCounts
    from tui_queue.engine.stats import QueueStats

log = logging.getLogger(__name__)


class WorkerState(StrEnum):
    CONNECTING = "connecting"
    IDLE = "idle"
    WORKING = "working"
    PAUSED = "paused"  # connected and consuming, starts no new task
    CANCELLED = "cancelled"  # basic.cancel sent: gets nothing new, finishes what it holds
    HUNG = "hung"  # neither reads nor writes; the broker drops it at heartbeat timeout
    KILLED = "killed"
    RECONNECTING = "reconnecting"  # lost its connection by no wish of the user; retries
    STOPPED = "stopped"  # thread ended (engine stop or worker removed)


class PublishOutcome(StrEnum):
    SENT = "sent"  # no confirms asked: handed to the socket
    CONFIRMED = "confirmed"  # broker basic.ack
    NACKED = "nacked"  # broker basic.nack
    RETURNED = "returned"  # unroutable (basic.return)
    FAILED = "failed"  # never reached the broker (connection error)


@dataclass(slots=True, kw_only=True)
class Event:
    at: float = field(default_factory=time.monotonic)


# --- messages -------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class MessagePublished(Event):
    """One task handed to the broker, with its outcome (SENT when confirms are off)."""

    message_id: str | None  # None when it failed before an id was given
    seq: int | None
    body: str  # preview, at most 256 characters
    size: int  # body bytes
    persistent: bool
    outcome: PublishOutcome
    detail: str = ""


@dataclass(slots=True, kw_only=True)
class MessageReceived(Event):
    worker: str
    message_id: str | None  # None for a message without one (another publisher)
    seq: int | None  # None when external
    body: str
    delivery_tag: int
    redelivered: bool
    delivery_count: int | None  # x-delivery-count (quorum queues), when the broker sends it
    auto_ack: bool
    external: bool  # published outside this engine (tutorial new_task.py, another run)
    dots: int
    duplicate_delivery: bool  # already done once: at-least-once delivery at work


@dataclass(slots=True, kw_only=True)
class WorkStarted(Event):
    worker: str
    message_id: str | None
    seq: int | None
    body: str
    duration: float  # seconds of work planned (dots x seconds per dot)
    acked_before: bool


@dataclass(slots=True, kw_only=True)
class WorkDone(Event):
    worker: str
    message_id: str | None
    seq: int | None
    body: str
    busy: float  # seconds actually spent
    duplicate: bool  # this message was already done before: counted in totals.duplicates


@dataclass(slots=True, kw_only=True)
class MessageAcked(Event):
    worker: str
    message_id: str | None
    seq: int | None
    delivery_tag: int
    before_work: bool


@dataclass(slots=True, kw_only=True)
class MessageRequeued(Event):
    """A message a worker held went back to the queue (its holder died, cancelled a prefetch...)."""

    message_id: str | None
    seq: int | None
    worker: str  # the worker that held it
    reason: str


@dataclass(slots=True, kw_only=True)
class MessageLost(Event):
    """Gone for good: auto-acked or acked before the work, and its worker died before finishing."""

    message_id: str | None
    seq: int | None
    worker: str | None  # None when the broker lost it (restart without durability)
    reason: str


# --- workers ---------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class WorkerAdded(Event):
    worker: str
    settings: WorkerSettings


@dataclass(slots=True, kw_only=True)
class WorkerRemoved(Event):
    worker: str


@dataclass(slots=True, kw_only=True)
class WorkerStateChanged(Event):
    worker: str
    state: WorkerState
    reason: str = ""


@dataclass(slots=True, kw_only=True)
class WorkerSettingsChanged(Event):
    worker: str
    settings: WorkerSettings
    # True when the change needed basic.cancel + basic.qos + basic.consume on the broker.
    resubscribed: bool


@dataclass(slots=True, kw_only=True)
class WorkerKilled(Event):
    worker: str
    mode: KillMode
    requeued: int  # held messages the broker takes back
    lost: int  # held messages gone for good


# --- broker, queue, stats ----------------------------------------------------------------------


class BrokerState(StrEnum):
    RESTARTING = "restarting"
    UP = "up"


@dataclass(slots=True, kw_only=True)
class BrokerStateChanged(Event):
    state: BrokerState
    detail: str = ""


@dataclass(slots=True, kw_only=True)
class QueuePurged(Event):
    queue: str
    count: int  # what the broker said it removed


@dataclass(slots=True, kw_only=True)
class QueueRedeclared(Event):
    spec: QueueSpec


@dataclass(slots=True, kw_only=True)
class StatsUpdated(Event):
    """A few times a second: the broker's view of the queue beside the ledger's totals."""

    queue: QueueStats
    totals: LedgerTotals
    workers: tuple[WorkerCounts, ...]


@dataclass(slots=True, kw_only=True)
class EngineError(Event):
    """Something failed on an engine thread; the engine keeps going. One line, no traceback."""

    where: str  # "worker w1", "publisher", "stats"
    message: str


# One of each for every message: a reader that shows them one by one subscribes to these; one
# that reads RecentTasks and the ledger's counts can leave them out, and then none are built.
PER_MESSAGE_EVENTS: tuple[type[Event], ...] = (
    MessagePublished,
    MessageReceived,
    WorkStarted,
    WorkDone,
    MessageAcked,
)


def events_but_per_message() -> tuple[type[Event], ...]:
    """Every event kind the engine emits except PER_MESSAGE_EVENTS."""
    return tuple(kind for kind in Event.__subclasses__() if kind not in PER_MESSAGE_EVENTS)


Subscriber = Callable[[Event], None]
E = TypeVar("E", bound=Event)


class Subscription:
    def __init__(
        self, bus: EventBus, callback: Subscriber, kinds: frozenset[type[Event]] | None
    ) -> None:
        self._bus = bus
        self.callback = callback
        self.kinds = kinds  # None: every event

    def close(self) -> None:
        self._bus.unsubscribe(self)

    def set_kinds(self, kinds: tuple[type[Event], ...] | None) -> None:
        """Take other kinds from now on (None: every event; an empty tuple: none)."""
        self._bus.rekind(self, frozenset(kinds) if kinds is not None else None)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class EventBus:
    """The engine's one subscription point. Thread-safe; callbacks run on the emitting thread.

    A subscriber may name the event kinds it wants; the engine then does not even build the
    events nobody wants (`wants`), which matters on the per-message path.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Copy-on-write: emit() and wants() read these without the lock, so they stay cheap.
        self._subscriptions: tuple[Subscription, ...] = ()
        self._everything = False
        self._wanted: frozenset[type[Event]] = frozenset()

    def subscribe(
        self, callback: Subscriber, kinds: tuple[type[Event], ...] | None = None
    ) -> Subscription:
        subscription = Subscription(self, callback, frozenset(kinds) if kinds is not None else None)
        with self._lock:
            self._subscriptions = (*self._subscriptions, subscription)
            self._recount()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)
            self._recount()

    def rekind(self, subscription: Subscription, kinds: frozenset[type[Event]] | None) -> None:
        with self._lock:
            subscription.kinds = kinds
            self._recount()

    def _recount(self) -> None:
        self._everything = any(s.kinds is None for s in self._subscriptions)
        self._wanted = frozenset().union(*(s.kinds or () for s in self._subscriptions))

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscriptions)

    def wants(self, kind: type[Event]) -> bool:
        """Whether any subscriber takes events of this kind (build them only then)."""
        return self._everything or kind in self._wanted

    def emit(self, event: Event) -> None:
        kind = type(event)
        for subscription in self._subscriptions:
            kinds = subscription.kinds  # read once: set_kinds may change it meanwhile
            if kinds is not None and kind not in kinds:
                continue
            try:
                subscription.callback(event)
            except Exception:  # a broken subscriber must not take an engine thread down
                log.exception("event subscriber failed on %r", event)


def announce_released(
    bus: EventBus, requeued: Iterable[Released], lost: Iterable[Released], reason: str
) -> None:
    """MessageRequeued and MessageLost for what the books just released (a worker's death, a
    purge, a broker restart), each naming the worker that held it, if any."""
    if not bus.has_subscribers:
        return
    for item in requeued:
        bus.emit(
            MessageRequeued(
                message_id=item.message_id, seq=item.seq, worker=item.worker or "?", reason=reason
            )
        )
    for item in lost:
        bus.emit(
            MessageLost(message_id=item.message_id, seq=item.seq, worker=item.worker, reason=reason)
        )


class EventWaiter:
    """Records events and lets a thread wait, with a deadline, for a condition they make true.

    Every event wakes the waiters, which re-check their predicate: no polling loop.
    """

    def __init__(
        self,
        bus: EventBus,
        keep: Callable[[Event], bool] | None = None,
        maxlen: int | None = None,
    ) -> None:
        self._condition = threading.Condition()
        self._keep = keep
        self._events: deque[Event] = deque(maxlen=maxlen)
        self._subscription = bus.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        with self._condition:
            if self._keep is None or self._keep(event):
                self._events.append(event)
            self._condition.notify_all()

    @property
    def events(self) -> list[Event]:
        with self._condition:
            return list(self._events)

    def of_type(self, kind: type[E]) -> list[E]:
        with self._condition:
            return [event for event in self._events if isinstance(event, kind)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """True once predicate() holds (checked now and after each event), else False."""
        with self._condition:
            return self._condition.wait_for(predicate, timeout)

    def wait_event(
        self, kind: type[E], match: Callable[[E], bool] | None = None, timeout: float = 10.0
    ) -> E:
        """The first recorded `kind` event that `match` accepts; TimeoutError at the deadline."""
        found: list[E] = []

        def seen() -> bool:
            for event in self._events:
                if isinstance(event, kind) and (match is None or match(event)):
                    found.append(event)
                    return True
            return False

        with self._condition:
            if not self._condition.wait_for(seen, timeout):
                raise TimeoutError(f"no {kind.__name__} event within {timeout} s")
        return found[0]

    def clear(self) -> None:
        with self._condition:
            self._events.clear()

    def close(self) -> None:
        self._subscription.close()

    def __enter__(self) -> EventWaiter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
