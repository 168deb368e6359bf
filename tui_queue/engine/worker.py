"""One worker: one thread that owns one pika BlockingConnection and does the tutorial's work.

Everything that touches the connection runs on the worker's thread. Other threads send commands
(closures) through a Mailbox; the thread runs them between pika calls, never inside a pika
callback. While a task "works" the thread sits in `process_data_events(time_limit=remaining)`, so
heartbeats are answered, new deliveries are taken in, and a command (kill, stop) interrupts the
work at once.
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

import pika.exceptions
import pika.spec
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tui_queue.engine.config import (
    AckTiming,
    KillMode,
    QueueSpec,
    WorkerSettings,
    validate_seconds_per_dot,
)
from tui_queue.engine.connect import BrokerConnectError, connect, declare_queue
from tui_queue.engine.events import (
    EngineError,
    EventBus,
    MessageAcked,
    MessageLost,
    MessageReceived,
    MessageRequeued,
    WorkDone,
    WorkerKilled,
    WorkerSettingsChanged,
    WorkerState,
    WorkerStateChanged,
    WorkStarted,
)
from tui_queue.engine.ledger import DeathReport, Key, Ledger
from tui_queue.engine.ledger import Delivery as LedgerDelivery
from tui_queue.engine.mailbox import Mailbox
from tui_queue.engine.pika_compat import ack_in_dispatch, capture_cancel_races, sever
from tui_queue.engine.tasks import dots, preview

log = logging.getLogger(__name__)


class _SessionLost(Exception):
    """The broker closed our channel (consumer timeout, a refused declare...)."""


# What a lost connection or closed channel looks like from pika's side.
_SESSION_ERRORS = (pika.exceptions.AMQPError, OSError, BrokerConnectError, _SessionLost)


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
        "seq",
        "tag",
        "text",
    )

    def __init__(
        self,
        tag: int,
        key: Key,
        seq: int | None,
        message_id: str | None,
        body: bytes,
        auto_ack: bool,
    ) -> None:
        self.tag = tag
        self.key = key
        self.seq = seq
        self.message_id = message_id
        self.body = body
        self.auto_ack = auto_ack
        self.acked = False
        self.dots = dots(body)
        self.text = preview(body)  # for events and the progress bar; bodies may be 128 MiB


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


Command = Callable[[], None]


class Worker:
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
    ) -> None:
        self.name = name
        self._link = connection
        self._queue_spec = queue
        self._ledger = ledger
        self._bus = bus
        self._mailbox: Mailbox[Command] = Mailbox()
        self._thread = threading.Thread(target=self._run, name=f"tq-worker-{name}", daemon=True)
        # Below: owned by the worker thread once started.
        self._settings = settings or WorkerSettings()
        self._spd = validate_seconds_per_dot(seconds_per_dot)
        self._paused = False
        self._want = _Want.CONNECTED
        self._stopping = False
        self._user_cancelled = False
        self._conn: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._consumer_tag: str | None = None
        self._tag_auto_ack: dict[str, bool] = {}
        self._resubscribe_at: float | None = None
        # True only while the serve loop waits in process_data_events: zero-work tasks may then
        # be done inside the delivery callback (never during a kill, cancel or stop).
        self._inline = False
        self._buffer: deque[_Delivery] = deque()
        self._current: _Task | None = None
        self._current_public: CurrentTask | None = None
        self._state = WorkerState.CONNECTING
        # Read by other threads through snapshot().
        self._public_lock = threading.Lock()
        self._public = WorkerSnapshot(name, self._state, self._settings, False, self._spd, None, 0)

    # --- public, any thread ---------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to close cleanly (unacked go back to the queue) and end."""
        self._mailbox.put(self._cmd_stop)

    def stop(self, timeout: float = 10.0) -> bool:
        """request_stop() and join; True if the thread has ended."""
        if self._thread.is_alive():
            self.request_stop()
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def snapshot(self) -> WorkerSnapshot:
        with self._public_lock:
            return self._public

    def update(self, settings: WorkerSettings, requeue_held: bool = False) -> None:
        """New settings. A prefetch or auto-ack change re-subscribes (basic.cancel, basic.qos,
        basic.consume): qos only binds consumers created after it. With requeue_held, deliveries
        not started yet are given back (basic.nack requeue) so the new prefetch applies to them."""
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
            self._bus.emit(EngineError(where=f"worker {self.name}", message=_one_line(error)))
            self._release_connection(f"worker failed: {_one_line(error)}")
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
                self._resubscribe_at = None
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
        tag = channel.basic_consume(
            self._queue_spec().name, on_message_callback=self._on_message, auto_ack=auto_ack
        )
        self._consumer_tag = tag
        self._tag_auto_ack[tag] = auto_ack

    def _unsubscribe(self) -> None:
        tag, conn, channel = self._consumer_tag, self._conn, self._channel
        if tag is None or conn is None or channel is None:
            return
        # Take in, in order, what has already arrived; what races the cancel goes to _accept
        # through capture_cancel_races, so nothing is rejected or dropped behind our back.
        conn.process_data_events(0)
        with capture_cancel_races(channel, self._accept):
            channel.basic_cancel(tag)
        self._consumer_tag = None

    def _on_message(
        self,
        _channel: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        self._accept(method, properties, body)

    def _on_broker_cancel(self, _frame: object) -> None:
        # The queue was deleted (or redeclared): consume again after a moment, redeclaring it.
        self._consumer_tag = None
        if not self._user_cancelled:
            self._resubscribe_at = time.monotonic() + 0.2

    def _accept(
        self, method: pika.spec.Basic.Deliver, properties: pika.spec.BasicProperties, body: bytes
    ) -> None:
        auto_ack = self._tag_auto_ack.get(method.consumer_tag, False)
        message_id = properties.message_id
        info = self._ledger.delivered(self.name, message_id, method.redelivered, auto_ack)
        if (
            self._inline
            and self._current is None
            and not self._buffer
            and not self._paused
            and (self._spd == 0 or b"." not in body)
        ):
            self._work_now(method, properties, body, auto_ack, info)
            return
        delivery = _Delivery(method.delivery_tag, info.key, info.seq, message_id, body, auto_ack)
        self._buffer.append(delivery)
        if self._bus.has_subscribers:
            self._announce(method, properties, info, delivery.text, delivery.dots, auto_ack)

    def _work_now(
        self,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
        auto_ack: bool,
        info: LedgerDelivery,
    ) -> None:
        """A zero-work task while idle: done here, inside pika's dispatch, and acked in the
        callback as a plain pika consumer does; the same books and events as the long way round
        (_start_next, _finish_current), without its objects. Every message of a zero-work flood
        takes this path, so it is kept lean."""
        bus = self._bus
        text = preview(body) if bus.has_subscribers else ""
        if bus.has_subscribers:
            self._announce(method, properties, info, text, dots(body), auto_ack)
        settings = self._settings
        tag = method.delivery_tag
        manual = not (auto_ack or settings.forget_ack)
        before = manual and settings.ack_timing is AckTiming.BEFORE_WORK
        channel = self._channel_for_ack()
        if before:
            channel.basic_ack(delivery_tag=tag)
            self._ledger.acked(self.name, info.key)
        if bus.wants(WorkStarted):
            bus.emit(
                WorkStarted(
                    worker=self.name,
                    message_id=properties.message_id,
                    seq=info.seq,
                    body=text,
                    duration=0.0,
                    acked_before=before,
                )
            )
        if before and bus.wants(MessageAcked):
            self._emit_acked(properties.message_id, info.seq, tag, before=True)
        after = manual and not before
        if after:
            try:
                ack_in_dispatch(channel, tag)
            except BaseException:
                self._ledger.done(self.name, info.key, 0.0)  # the work did happen
                raise
        duplicate = self._ledger.done(self.name, info.key, 0.0, acked=after)
        if bus.wants(WorkDone):
            bus.emit(
                WorkDone(
                    worker=self.name,
                    message_id=properties.message_id,
                    seq=info.seq,
                    body=text,
                    busy=0.0,
                    duplicate=duplicate,
                )
            )
        if after and bus.wants(MessageAcked):
            self._emit_acked(properties.message_id, info.seq, tag, before=False)

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
        settings = self._settings
        duration = delivery.dots * self._spd
        ack_before = (
            not delivery.auto_ack
            and settings.ack_timing is AckTiming.BEFORE_WORK
            and not settings.forget_ack
        )
        if ack_before:
            self._ack(delivery)
        self._current = _Task(delivery, now, now + duration)
        if self._bus.wants(WorkStarted):
            self._bus.emit(
                WorkStarted(
                    worker=self.name,
                    message_id=delivery.message_id,
                    seq=delivery.seq,
                    body=delivery.text,
                    duration=duration,
                    acked_before=ack_before,
                )
            )
        if ack_before and self._bus.wants(MessageAcked):
            self._emit_acked(delivery.message_id, delivery.seq, delivery.tag, before=True)
        if duration > 0:
            # Published for the progress bar; zero-work tasks skip it to keep throughput.
            self._current_public = CurrentTask(delivery.message_id, delivery.text, now, duration)
            self._publish()

    def _finish_current(self, now: float) -> None:
        task = self._current
        assert task is not None
        self._current = None
        if self._current_public is not None:
            self._current_public = None
            self._publish()
        delivery = task.delivery
        busy = now - task.started
        # Ack after the work, as the tutorial teaches; also when the timing was switched to
        # "before" while this task ran: it still owes its ack.
        ack = not (delivery.auto_ack or delivery.acked or self._settings.forget_ack)
        if ack:
            try:
                self._channel_for_ack().basic_ack(delivery_tag=delivery.tag)
            except BaseException:
                self._ledger.done(self.name, delivery.key, busy)  # the work did happen
                raise
            delivery.acked = True
        # One ledger call for done + ack: this is the path every message takes.
        duplicate = self._ledger.done(self.name, delivery.key, busy, acked=ack)
        bus = self._bus
        if bus.wants(WorkDone):
            bus.emit(
                WorkDone(
                    worker=self.name,
                    message_id=delivery.message_id,
                    seq=delivery.seq,
                    body=delivery.text,
                    busy=busy,
                    duplicate=duplicate,
                )
            )
        if ack and bus.wants(MessageAcked):
            self._emit_acked(delivery.message_id, delivery.seq, delivery.tag, before=False)

    def _channel_for_ack(self) -> BlockingChannel:
        channel = self._channel
        assert channel is not None
        return channel

    def _ack(self, delivery: _Delivery) -> None:
        self._channel_for_ack().basic_ack(delivery_tag=delivery.tag)
        delivery.acked = True
        self._ledger.acked(self.name, delivery.key)

    def _emit_acked(self, message_id: str | None, seq: int | None, tag: int, before: bool) -> None:
        self._bus.emit(
            MessageAcked(
                worker=self.name,
                message_id=message_id,
                seq=seq,
                delivery_tag=tag,
                before_work=before,
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
        for delivery in self._buffer:
            if delivery.auto_ack or delivery.acked:
                keep.append(delivery)  # not the broker's any more: ours to finish
                continue
            channel.basic_nack(delivery_tag=delivery.tag, requeue=True)
            self._ledger.requeued(self.name, delivery.key, "given back on a prefetch change")
            self._bus.emit(
                MessageRequeued(
                    message_id=delivery.message_id,
                    seq=delivery.seq,
                    worker=self.name,
                    reason="given back on a prefetch change",
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
        if self._conn is None:
            # Between connections (reconnecting): there is no connection to drop.
            self._want = _Want.KILLED
            self._bus.emit(WorkerKilled(worker=self.name, mode=mode, requeued=0, lost=0))
            self._sync_state()
            return
        if mode is KillMode.CANCEL:
            self._user_cancelled = True
            self._resubscribe_at = None
            if self._connected():
                self._unsubscribe()
            self._bus.emit(WorkerKilled(worker=self.name, mode=mode, requeued=0, lost=0))
            self._sync_state()
            return
        if mode is KillMode.HANG:
            # Stop reading and writing: the connection stays open until the broker's heartbeat
            # check gives up on it. Only the mailbox's own queue wakes us now. Acks already
            # queued go out first: the hang starts after the last thing the worker did.
            with contextlib.suppress(*_SESSION_ERRORS):
                self._conn.process_data_events(0)
            self._want = _Want.HUNG
            self._mailbox.attach(None)
            self._bus.emit(WorkerKilled(worker=self.name, mode=mode, requeued=0, lost=0))
            self._sync_state()
            return
        report = self._close_session(mode, f"killed ({mode.value})")
        self._want = _Want.KILLED
        self._bus.emit(
            WorkerKilled(
                worker=self.name, mode=mode, requeued=len(report.requeued), lost=len(report.lost)
            )
        )
        self._sync_state()

    def _close_session(self, mode: KillMode, reason: str) -> DeathReport:
        """End the connection the way `mode` says and settle the books for what it held."""
        conn = self._conn
        if conn is not None and conn.is_open:
            try:
                conn.process_data_events(0)  # what already arrived is ours: book it first
                if mode is KillMode.CLEAN and self._connected():
                    self._unsubscribe()
            except _SESSION_ERRORS:
                pass
        report = self._settle(reason)
        if conn is not None:
            if mode is KillMode.CLEAN and conn.is_open:
                try:
                    conn.close()  # channel.close + connection.close: the broker requeues unacked
                except _SESSION_ERRORS:
                    sever(conn)
            else:
                sever(conn)
        self._forget_connection()
        return report

    def _settle(self, reason: str) -> DeathReport:
        """The books after this worker's connection is gone: unacked requeued, in hand lost."""
        self._buffer.clear()
        self._current = None
        self._current_public = None
        self._publish()
        report = self._ledger.worker_died(self.name, reason)
        if self._bus.has_subscribers:
            for item in report.requeued:
                self._bus.emit(
                    MessageRequeued(
                        message_id=item.message_id, seq=item.seq, worker=self.name, reason=reason
                    )
                )
            for item in report.lost:
                self._bus.emit(
                    MessageLost(
                        message_id=item.message_id, seq=item.seq, worker=self.name, reason=reason
                    )
                )
        return report

    def _forget_connection(self) -> None:
        self._mailbox.attach(None)
        self._conn = None
        self._channel = None
        self._consumer_tag = None
        self._tag_auto_ack.clear()
        self._resubscribe_at = None

    def _cmd_revive(self) -> None:
        if self._want is _Want.HUNG:
            self._settle("hung worker revived")
            if self._conn is not None:
                sever(self._conn)
            self._forget_connection()
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
        if self._want is _Want.HUNG:
            self._settle("worker stopped")
            if self._conn is not None:
                sever(self._conn)
            self._forget_connection()
        elif self._conn is not None:
            self._close_session(KillMode.CLEAN, "worker stopped")

    def _session_lost(self, error: BaseException) -> None:
        reason = f"connection lost: {_one_line(error)}"
        self._release_connection(reason)
        self._set_state(WorkerState.RECONNECTING, reason)

    def _release_connection(self, reason: str) -> None:
        self._settle(reason)
        if self._conn is not None:
            sever(self._conn)
        self._forget_connection()

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
        snapshot = WorkerSnapshot(
            name=self.name,
            state=self._state,
            settings=self._settings,
            paused=self._paused,
            seconds_per_dot=self._spd,
            current=self._current_public,
            buffered=len(self._buffer),
        )
        with self._public_lock:
            self._public = snapshot


def _one_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return " ".join(text.split())
