"""One worker: one thread that owns one pika BlockingConnection and does the tutorial's work.

Everything that touches the connection runs on the worker's thread. Other threads send commands
(closures) through a Mailbox; the thread runs them between pika calls, never inside a pika
callback. While a task "works" the thread sits in `process_data_events(time_limit=remaining)`, so
heartbeats are answered, new deliveries are taken in, and a command (kill, stop) interrupts the
work at once.

A session ends in one place, _end_session: the worker lets go of the connection first and drops
it after, so anything still read off it is told apart from a live delivery (_on_dead_delivery)
and the books are settled once, with everything the connection ever handed over.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto

import pika.spec
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tui_queue.engine.config import (
    AckTiming,
    KillMode,
    QueueSpec,
    WorkerSettings,
    validate_seconds_per_dot,
)
from tui_queue.engine.connect import LINK_ERRORS, connect, declare_queue, one_line
from tui_queue.engine.events import (
    EngineError,
    EventBus,
    MessageAcked,
    MessageReceived,
    MessageRequeued,
    WorkDone,
    WorkerKilled,
    WorkerSettingsChanged,
    WorkerState,
    WorkerStateChanged,
    WorkStarted,
    announce_released,
)
from tui_queue.engine.ledger import DeathReport, Key, Ledger
from tui_queue.engine.ledger import Delivery as LedgerDelivery
from tui_queue.engine.mailbox import MailboxThread
from tui_queue.engine.pika_compat import (
    ack_in_dispatch,
    capture_cancel_races,
    sever,
    undispatched_deliveries,
)
from tui_queue.engine.recent import RecentTask, RecentTasks
from tui_queue.engine.tasks import dots, preview

log = logging.getLogger(__name__)


class _SessionLost(Exception):
    """The broker closed our channel (consumer timeout, a refused declare...)."""


# What ends a session: the connection or channel is gone, the worker reconnects.
_SESSION_ERRORS = (*LINK_ERRORS, _SessionLost)


@dataclass(frozen=True, slots=True)
class WorkerConnection:
    """How a worker reaches the broker."""

    url: str
    heartbeat: int | None = None
    reconnect_delay: float = 0.2
    reconnect_delay_max: float = 2.0
    connection_name: str = "tui-queue"


@dataclass(frozen=True, slots=True)
class CurrentTask:
    message_id: str | None
    body: str
    started: float  # time.monotonic()
    duration: float


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    name: str
    state: WorkerState
    settings: WorkerSettings
    paused: bool
    seconds_per_dot: float
    current: CurrentTask | None
    buffered: int  # delivered, not started yet


class _Delivery:
    __slots__ = (
        "acked",
        "auto_ack",
        "body",
        "dots",
        "key",
        "message_id",
        "recent",
        "seq",
        "tag",
    )

    def __init__(
        self,
        tag: int,
        key: Key,
        seq: int | None,
        message_id: str | None,
        body: bytes,
        auto_ack: bool,
        recent: RecentTask,
    ) -> None:
        self.tag = tag
        self.key = key
        self.seq = seq
        self.message_id = message_id
        self.body = body
        self.auto_ack = auto_ack
        self.acked = False
        self.dots = dots(body)
        self.recent = recent  # its body preview serves events and the progress bar


class _Task:
    __slots__ = ("deadline", "delivery", "started")

    def __init__(self, delivery: _Delivery, started: float, deadline: float) -> None:
        self.delivery = delivery
        self.started = started
        self.deadline = deadline


class _Want(Enum):
    CONNECTED = auto()
    KILLED = auto()
    HUNG = auto()


class Worker(MailboxThread):
    """A worker thread. Public methods are thread-safe and return at once (commands are queued)."""

    def __init__(
        self,
        name: str,
        connection: WorkerConnection,
        queue: Callable[[], QueueSpec],
        ledger: Ledger,
        bus: EventBus,
        settings: WorkerSettings | None = None,
        seconds_per_dot: float = 1.0,
        recent_length: int = 200,
    ) -> None:
        super().__init__(f"tq-worker-{name}")
        self.name = name
        self._link = connection
        self._queue_spec = queue
        self._ledger = ledger
        self._bus = bus
        self._settings = settings or WorkerSettings()
        # The settings last handed to update(); the thread applies them shortly after.
        self._requested = self._settings
        # Below: owned by the worker thread once started.
        self._spd = validate_seconds_per_dot(seconds_per_dot)
        self._paused = False
        self._want = _Want.CONNECTED
        self._user_cancelled = False
        self._conn: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._consumer_tag: str | None = None
        # Auto-ack of the consumer deliveries come from: the current one, or the one being
        # cancelled (its last deliveries keep its mode; the settings may have changed already).
        self._consuming_auto_ack = self._settings.auto_ack
        self._resubscribe_at: float | None = None
        # True only while the serve loop waits in process_data_events: zero-work tasks may then
        # be done inside the delivery callback (never during a kill, cancel or stop).
        self._inline = False
        self._buffer: deque[_Delivery] = deque()
        self._current: _Task | None = None
        self._state = WorkerState.CONNECTING
        # Written by the worker thread only; any thread reads it (see engine/recent.py).
        self.recent = RecentTasks(recent_length)
        # Read by other threads through snapshot().
        self._public_lock = threading.Lock()
        self._public = WorkerSnapshot(name, self._state, self._settings, False, self._spd, None, 0)

    # --- public, any thread ---------------------------------------------------------------
    # start(), request_stop() (close cleanly: unacked go back to the queue), stop(), alive:
    # see MailboxThread.

    def snapshot(self) -> WorkerSnapshot:
        with self._public_lock:
            return self._public

    @property
    def requested_settings(self) -> WorkerSettings:
        """The settings last handed to update(), applied or about to be."""
        return self._requested

    def update(self, settings: WorkerSettings, requeue_held: bool = False) -> None:
        """New settings. A prefetch or auto-ack change re-subscribes (basic.cancel, basic.qos,
        basic.consume): qos only binds consumers created after it. With requeue_held, deliveries
        not started yet are given back (basic.nack requeue) so the new prefetch applies to them."""
        self._requested = settings
        self._mailbox.put(lambda: self._apply_settings(settings, requeue_held))

    def set_seconds_per_dot(self, seconds: float) -> None:
        value = validate_seconds_per_dot(seconds)
        self._mailbox.put(lambda: self._set_spd(value))

    def pause(self) -> None:
        self._mailbox.put(lambda: self._set_paused(True))

    def resume(self) -> None:
        self._mailbox.put(lambda: self._set_paused(False))

    def kill(self, mode: KillMode) -> None:
        self._mailbox.put(lambda: self._cmd_kill(mode))

    def revive(self) -> None:
        self._mailbox.put(self._cmd_revive)

    # --- thread body ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as error:  # the one place a worker failure ends up: reported, not raised
            log.exception("worker %s failed", self.name)
            self._bus.emit(EngineError(where=f"worker {self.name}", message=one_line(error)))
            self._end_session(clean=False, reason=f"worker failed: {one_line(error)}")
        finally:
            self._mailbox.attach(None)
            self._set_state(WorkerState.STOPPED)

    def _loop(self) -> None:
        delay = self._link.reconnect_delay
        while not self._stopping:
            if self._want is not _Want.CONNECTED:
                command = self._mailbox.wait_without_connection(None)
                if command is not None:
                    command()
                continue
            try:
                self._open_session()
                delay = self._link.reconnect_delay
                self._serve()
            except _SESSION_ERRORS as error:
                if self._stopping or self._want is not _Want.CONNECTED:
                    continue
                self._session_lost(error)
                command = self._mailbox.wait_without_connection(delay)
                delay = min(delay * 2, self._link.reconnect_delay_max)
                if command is not None:
                    command()

    def _open_session(self) -> None:
        if self._state is not WorkerState.RECONNECTING:
            self._set_state(WorkerState.CONNECTING)
        conn = connect(
            self._link.url,
            heartbeat=self._link.heartbeat,
            name=f"{self._link.connection_name} {self.name}",
        )
        try:
            channel = conn.channel()
            channel.add_on_cancel_callback(self._on_broker_cancel)
            declare_queue(channel, self._queue_spec())
        except BaseException:
            sever(conn)
            raise
        self._conn, self._channel = conn, channel
        self._mailbox.attach(conn)
        if not self._user_cancelled:
            self._subscribe()
        self._sync_state()

    def _serve(self) -> None:
        while True:
            if not self._mailbox.empty():
                for command in self._mailbox.drain():
                    command()
            conn, channel = self._conn, self._channel
            if self._stopping or self._want is not _Want.CONNECTED or conn is None:
                return  # killed (and maybe revived already): the loop opens a new session
            assert channel is not None
            now = time.monotonic()
            if self._resubscribe_at is not None and now >= self._resubscribe_at:
                declare_queue(channel, self._queue_spec())
                self._subscribe()
            if self._current is None and self._buffer and not self._paused:
                self._start_next(now)
            current = self._current
            if current is not None and current.deadline <= now:
                self._finish_current(now)
                continue
            self._sync_state()
            limit = None if current is None else current.deadline - now
            if self._resubscribe_at is not None:
                wait = max(0.0, self._resubscribe_at - now)
                limit = wait if limit is None else min(limit, wait)
            self._inline = True
            try:
                conn.process_data_events(time_limit=limit)
            finally:
                self._inline = False
            # A channel closed by the broker (consumer timeout, refused declare) shows up here.
            if channel.is_closed:
                raise _SessionLost("the broker closed the channel")

    # --- deliveries and work --------------------------------------------------------------

    def _subscribe(self) -> None:
        channel = self._channel
        assert channel is not None
        auto_ack = self._settings.auto_ack
        # qos (global=false) binds consumers created after it: set it, then consume.
        channel.basic_qos(prefetch_count=self._settings.prefetch)
        self._consuming_auto_ack = auto_ack
        self._consumer_tag = channel.basic_consume(
            self._queue_spec().name, on_message_callback=self._on_message, auto_ack=auto_ack
        )
        self._resubscribe_at = None  # consuming again: a pending re-subscribe has nothing to do

    def _unsubscribe(self) -> None:
        tag, conn, channel = self._consumer_tag, self._conn, self._channel
        if tag is None or conn is None or channel is None:
            return
        # Take in, in order, what has already arrived; what races the cancel goes to _accept
        # through capture_cancel_races, so nothing is rejected or dropped behind our back.
        conn.process_data_events(0)
        with capture_cancel_races(channel, self._accept):
            # pika returns, instead of dispatching, an auto-ack consumer's undispatched ones
            for method, properties, body in channel.basic_cancel(tag):
                self._accept(method, properties, body)
        self._consumer_tag = None

    def _on_message(
        self,
        channel: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        if channel is not self._channel:
            self._on_dead_delivery(method, properties, body)
            return
        self._accept(method, properties, body)

    def _on_dead_delivery(
        self, method: pika.spec.Basic.Deliver, properties: pika.spec.BasicProperties, body: bytes
    ) -> None:
        """A delivery read off a connection the worker has let go (killed, hung, lost): the
        worker never saw it, and its tag means nothing on a later channel. Under manual ack the
        broker takes it back by itself, so the books leave the message where it is (by now it
        may be with another worker). Under auto-ack the broker counted it delivered and it is
        gone: booked here as in hand, it is counted lost when the books are settled."""
        if self._consuming_auto_ack:
            self._accept(method, properties, body)

    def _on_broker_cancel(self, _frame: object) -> None:
        if self._channel is None:
            return  # read off a connection already let go: its consumer went with it
        # The queue was deleted (or redeclared): consume again after a moment, redeclaring it.
        self._consumer_tag = None
        if not self._user_cancelled:
            self._resubscribe_at = time.monotonic() + 0.2

    def _accept(
        self, method: pika.spec.Basic.Deliver, properties: pika.spec.BasicProperties, body: bytes
    ) -> None:
        auto_ack = self._consuming_auto_ack
        message_id = properties.message_id
        info = self._ledger.delivered(self.name, message_id, method.redelivered, auto_ack)
        recent = RecentTask(
            info.key,
            info.seq,
            message_id,
            preview(body),
            bool(method.redelivered),
            info.external,
            auto_ack,
            info.duplicate_delivery,
        )
        self.recent.received(recent)
        if (
            self._inline
            and self._current is None
            and not self._buffer
            and not self._paused
            and (self._spd == 0 or b"." not in body)
        ):
            self._work_now(method, properties, body, auto_ack, info, recent)
            return
        delivery = _Delivery(
            method.delivery_tag, info.key, info.seq, message_id, body, auto_ack, recent
        )
        self._buffer.append(delivery)
        if self._bus.has_subscribers:
            self._announce(method, properties, info, delivery.recent.body, delivery.dots, auto_ack)

    def _work_now(
        self,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
        auto_ack: bool,
        info: LedgerDelivery,
        recent: RecentTask,
    ) -> None:
        """A zero-work task while idle: done here, inside pika's dispatch, and acked in the
        callback as a plain pika consumer does; the same books and events as the long way round
        (_start_next, _finish_current), without its objects. Every message of a zero-work flood
        takes this path, so it is kept lean."""
        text = recent.body
        if self._bus.has_subscribers:
            self._announce(method, properties, info, text, dots(body), auto_ack)
        message_id = properties.message_id
        tag = method.delivery_tag
        before, after = self._ack_plan(auto_ack)
        if before:
            ack_in_dispatch(self._channel_for_ack(), tag)
            self._ledger.acked(self.name, info.key)
        self._emit_started(message_id, info.seq, text, 0.0, tag, before)
        duplicate = self._book_done(info.key, 0.0, tag if after else None, in_dispatch=True)
        self.recent.finished(recent, duplicate)
        self._emit_done(message_id, info.seq, text, 0.0, duplicate, tag, after)

    def _announce(
        self,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        info: LedgerDelivery,
        text: str,
        dot_count: int,
        auto_ack: bool,
    ) -> None:
        message_id = properties.message_id
        bus = self._bus
        if info.requeued_from is not None and bus.wants(MessageRequeued):
            bus.emit(
                MessageRequeued(
                    message_id=message_id,
                    seq=info.seq,
                    worker=info.requeued_from,
                    reason="the broker took it back and delivered it again",
                )
            )
        if not bus.wants(MessageReceived):
            return
        count = properties.headers.get("x-delivery-count") if properties.headers else None
        bus.emit(
            MessageReceived(
                worker=self.name,
                message_id=message_id,
                seq=info.seq,
                body=text,
                delivery_tag=method.delivery_tag,
                redelivered=bool(method.redelivered),
                delivery_count=int(count) if isinstance(count, int) else None,
                auto_ack=auto_ack,
                external=info.external,
                dots=dot_count,
                duplicate_delivery=info.duplicate_delivery,
            )
        )

    def _start_next(self, now: float) -> None:
        delivery = self._buffer.popleft()
        duration = delivery.dots * self._spd
        before, _after = self._ack_plan(delivery.auto_ack)
        if before:
            self._channel_for_ack().basic_ack(delivery_tag=delivery.tag)
            delivery.acked = True
            self._ledger.acked(self.name, delivery.key)
        self._current = _Task(delivery, now, now + duration)
        self.recent.started(delivery.recent, now, duration)
        self._emit_started(
            delivery.message_id, delivery.seq, delivery.recent.body, duration, delivery.tag, before
        )
        if duration > 0:
            self._publish()  # for the progress bar; zero-work tasks skip it to keep throughput

    def _finish_current(self, now: float) -> None:
        task = self._current
        assert task is not None
        self._current = None
        if task.deadline > task.started:
            self._publish()
        delivery = task.delivery
        busy = now - task.started
        # Ack after the work, as the tutorial teaches; also when the timing was switched to
        # "before" while this task ran: it still owes its ack.
        before, after = self._ack_plan(delivery.auto_ack)
        ack = (before or after) and not delivery.acked
        tag = delivery.tag
        duplicate = self._book_done(delivery.key, busy, tag if ack else None, in_dispatch=False)
        self.recent.finished(delivery.recent, duplicate)
        self._emit_done(
            delivery.message_id, delivery.seq, delivery.recent.body, busy, duplicate, tag, ack
        )

    def _ack_plan(self, auto_ack: bool) -> tuple[bool, bool]:
        """(ack before the work, ack after it) for a delivery, under the settings of now."""
        settings = self._settings
        if auto_ack or settings.forget_ack:
            return False, False
        before = settings.ack_timing is AckTiming.BEFORE_WORK
        return before, not before

    def _book_done(self, key: Key, busy: float, ack_tag: int | None, in_dispatch: bool) -> bool:
        """Send the ack after the work (when there is one) and book the finish, in one ledger
        call on this path every message takes. True when the message had been done before."""
        if ack_tag is not None:
            channel = self._channel_for_ack()
            try:
                if in_dispatch:
                    ack_in_dispatch(channel, ack_tag)
                else:
                    channel.basic_ack(delivery_tag=ack_tag)
            except BaseException:
                self._ledger.done(self.name, key, busy)  # the work did happen; its ack did not
                raise
        return self._ledger.done(self.name, key, busy, acked=ack_tag is not None)

    def _channel_for_ack(self) -> BlockingChannel:
        channel = self._channel
        assert channel is not None
        return channel

    def _emit_started(
        self,
        message_id: str | None,
        seq: int | None,
        text: str,
        duration: float,
        tag: int,
        acked_before: bool,
    ) -> None:
        bus = self._bus
        if bus.wants(WorkStarted):
            bus.emit(
                WorkStarted(
                    worker=self.name,
                    message_id=message_id,
                    seq=seq,
                    body=text,
                    duration=duration,
                    acked_before=acked_before,
                )
            )
        if acked_before:
            self._emit_acked(message_id, seq, tag, before_work=True)

    def _emit_done(
        self,
        message_id: str | None,
        seq: int | None,
        text: str,
        busy: float,
        duplicate: bool,
        tag: int,
        acked: bool,
    ) -> None:
        bus = self._bus
        if bus.wants(WorkDone):
            bus.emit(
                WorkDone(
                    worker=self.name,
                    message_id=message_id,
                    seq=seq,
                    body=text,
                    busy=busy,
                    duplicate=duplicate,
                )
            )
        if acked:
            self._emit_acked(message_id, seq, tag, before_work=False)

    def _emit_acked(
        self, message_id: str | None, seq: int | None, tag: int, before_work: bool
    ) -> None:
        if self._bus.wants(MessageAcked):
            self._bus.emit(
                MessageAcked(
                    worker=self.name,
                    message_id=message_id,
                    seq=seq,
                    delivery_tag=tag,
                    before_work=before_work,
                )
            )

    # --- commands (worker thread) ---------------------------------------------------------

    def _connected(self) -> bool:
        return (
            self._want is _Want.CONNECTED
            and self._conn is not None
            and self._channel is not None
            and self._channel.is_open
        )

    def _apply_settings(self, settings: WorkerSettings, requeue_held: bool) -> None:
        old = self._settings
        self._settings = settings
        resubscribe = (
            self._connected()
            and self._consumer_tag is not None
            and (
                settings.auto_ack != old.auto_ack
                or (not settings.auto_ack and settings.prefetch != old.prefetch)
            )
        )
        if resubscribe:
            self._unsubscribe()
            if requeue_held:
                self._give_back_unstarted()
            self._subscribe()
        self._publish()
        self._bus.emit(
            WorkerSettingsChanged(worker=self.name, settings=settings, resubscribed=resubscribe)
        )

    def _give_back_unstarted(self) -> None:
        channel = self._channel
        assert channel is not None
        keep: deque[_Delivery] = deque()
        reason = "given back on a prefetch change"
        for delivery in self._buffer:
            if delivery.auto_ack or delivery.acked:
                keep.append(delivery)  # not the broker's any more: ours to finish
                continue
            channel.basic_nack(delivery_tag=delivery.tag, requeue=True)
            self._ledger.requeued(self.name, delivery.key, reason)
            self.recent.given_back(delivery.recent)
            self._bus.emit(
                MessageRequeued(
                    message_id=delivery.message_id,
                    seq=delivery.seq,
                    worker=self.name,
                    reason=reason,
                )
            )
        self._buffer = keep

    def _set_spd(self, seconds: float) -> None:
        self._spd = seconds
        self._publish()

    def _set_paused(self, paused: bool) -> None:
        self._paused = paused
        self._sync_state()

    def _cmd_kill(self, mode: KillMode) -> None:
        if self._want is not _Want.CONNECTED:
            return  # already dead or hung: nothing more to kill
        requeued = lost = 0
        if self._conn is None:
            # Between connections (reconnecting): there is no connection to drop.
            self._want = _Want.KILLED
        elif mode is KillMode.CANCEL:
            self._user_cancelled = True
            self._resubscribe_at = None
            if self._connected():
                self._unsubscribe()
        elif mode is KillMode.HANG:
            # Stop reading and writing: the connection stays open until the broker's heartbeat
            # check gives up on it. Only the mailbox's own queue wakes us now. Acks already
            # queued go out first: the hang starts after the last thing the worker did.
            with contextlib.suppress(*_SESSION_ERRORS):
                self._conn.process_data_events(0)
            self._want = _Want.HUNG
            self._mailbox.attach(None)
        else:
            report = self._end_session(mode is KillMode.CLEAN, f"killed ({mode.value})")
            self._want = _Want.KILLED
            requeued, lost = len(report.requeued), len(report.lost)
        self._bus.emit(WorkerKilled(worker=self.name, mode=mode, requeued=requeued, lost=lost))
        self._sync_state()

    def _cmd_revive(self) -> None:
        if self._want is _Want.HUNG:
            self._end_session(clean=False, reason="hung worker revived")
            self._want = _Want.CONNECTED
            self._user_cancelled = False
        elif self._want is _Want.KILLED:
            self._want = _Want.CONNECTED
            self._user_cancelled = False
        elif self._user_cancelled:
            self._user_cancelled = False
            if self._connected():
                self._subscribe()
        self._sync_state()

    def _cmd_stop(self) -> None:
        self._stopping = True
        if self._conn is not None:
            # A hung worker's connection is dropped: it would not answer a close.
            self._end_session(self._want is _Want.CONNECTED, "worker stopped")

    def _session_lost(self, error: BaseException) -> None:
        reason = f"connection lost: {one_line(error)}"
        self._end_session(clean=False, reason=reason)
        self._set_state(WorkerState.RECONNECTING, reason)

    def _end_session(self, clean: bool, reason: str) -> DeathReport:
        """Let go of the connection and settle the books for what it held.

        clean: basic.cancel, channel.close and connection.close (the broker requeues the unacked
        politely). Otherwise a TCP drop without AMQP close (a crash, a lost connection, a hung
        worker given up). Whatever is read off the connection once it is let go goes to
        _on_dead_delivery, and so do the deliveries pika read but never dispatched.
        """
        conn, channel = self._conn, self._channel
        if clean and self._connected():
            with contextlib.suppress(*_SESSION_ERRORS):
                self._unsubscribe()  # deliveries racing the cancel are ours: settled below
        self._mailbox.attach(None)
        self._conn = self._channel = None  # from here on, a delivery on `channel` is a dead one
        self._consumer_tag = None
        self._resubscribe_at = None
        if conn is not None:
            if clean and conn.is_open:
                try:
                    conn.close()
                except _SESSION_ERRORS:
                    sever(conn)
            else:
                sever(conn)
        if channel is not None:
            for method, properties, body in undispatched_deliveries(channel):
                self._on_dead_delivery(method, properties, body)
        return self._settle(reason)

    def _settle(self, reason: str) -> DeathReport:
        """The books after this worker's connection is gone: unacked requeued, in hand lost."""
        self._buffer.clear()
        self._current = None
        self._publish()
        report = self._ledger.worker_died(self.name, reason)
        self.recent.settle_unfinished(
            requeued={item.key for item in report.requeued}, lost={item.key for item in report.lost}
        )
        announce_released(self._bus, report.requeued, report.lost, reason)
        return report

    # --- state ----------------------------------------------------------------------------

    def _derive_state(self) -> WorkerState:
        if self._want is _Want.HUNG:
            return WorkerState.HUNG
        if self._want is _Want.KILLED:
            return WorkerState.KILLED
        if self._conn is None:
            return self._state  # connecting / reconnecting: set explicitly
        if self._current is not None:
            return WorkerState.WORKING
        if self._paused:
            return WorkerState.PAUSED
        if self._user_cancelled:
            return WorkerState.CANCELLED
        return WorkerState.IDLE

    def _sync_state(self) -> None:
        state = self._derive_state()
        if state is not self._state:
            self._set_state(state)

    def _set_state(self, state: WorkerState, reason: str = "") -> None:
        self._state = state
        self._publish()
        self._bus.emit(WorkerStateChanged(worker=self.name, state=state, reason=reason))

    def _publish(self) -> None:
        task, current = self._current, None
        if task is not None and task.deadline > task.started:  # zero-work tasks are not shown
            delivery = task.delivery
            duration = task.deadline - task.started
            current = CurrentTask(delivery.message_id, delivery.recent.body, task.started, duration)
        snapshot = WorkerSnapshot(
            name=self.name,
            state=self._state,
            settings=self._settings,
            paused=self._paused,
            seconds_per_dot=self._spd,
            current=current,
            buffered=len(self._buffer),
        )
        with self._public_lock:
            self._public = snapshot
