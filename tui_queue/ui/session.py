"""The broker and the engine behind the dashboard: started off the UI thread, stopped for good.

A LabSession owns the embedded broker (a child process, unless `--url` names a broker) and the
engine. `start_in_background` runs the slow part (spawning the broker, connecting, attaching the
workers) on a thread of its own, so the first frame never waits for it; `stop` joins that thread,
every engine thread and the broker child. Nothing here imports Textual.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from tui_queue.engine import (
    BrokerConnectError,
    Engine,
    EngineConfig,
    EngineInfo,
    Event,
    EventWaiter,
    SettingsError,
    Subscription,
    WorkerSettings,
    WorkerState,
    WorkerStateChanged,
    events_but_per_message,
)
from tui_queue.engine.broker_process import BrokerProcess, BrokerStartError
from tui_queue.ui.options import TUTORIAL_PORT, LabOptions

# How long one worker may take to attach before the next is started anyway.
WORKER_ATTACH_TIMEOUT = 5.0
_SETTLED = frozenset(
    {WorkerState.IDLE, WorkerState.WORKING, WorkerState.PAUSED, WorkerState.RECONNECTING}
)


class StartupError(Exception):
    """The lab could not start; str() is one line, fit for stderr."""


class _Closed(Exception):
    """stop() was called while the session was still starting."""


class LabSession:
    def __init__(self, options: LabOptions, subscriber: Callable[[Event], None]) -> None:
        self.options = options
        self._subscriber = subscriber
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._starter: threading.Thread | None = None
        self._broker: BrokerProcess | None = None
        self._engine: Engine | None = None
        self._subscription: Subscription | None = None
        # Per-message events feed the event log only; in a flood the app turns them off (the
        # panels read the workers' recent tasks and the ledger's counts in any case).
        self._each_message = True

    @property
    def engine(self) -> Engine:
        engine = self._engine
        if engine is None:
            raise RuntimeError("the session has not started")
        return engine

    @property
    def started(self) -> bool:
        return self._engine is not None and not self._closing.is_set()

    @property
    def broker_pid(self) -> int | None:
        return self._broker.pid if self._broker is not None else None

    # --- start --------------------------------------------------------------------------------

    def start_in_background(
        self, on_ready: Callable[[EngineInfo], None], on_failed: Callable[[str], None]
    ) -> None:
        """Start on a thread; exactly one of the callbacks runs there (none after stop())."""

        def run() -> None:
            try:
                info = self.start()
            except _Closed:
                return
            except StartupError as error:
                if not self._closing.is_set():
                    on_failed(str(error))
                return
            if not self._closing.is_set():
                on_ready(info)

        self._starter = threading.Thread(target=run, name="tq-ui-startup", daemon=True)
        self._starter.start()

    def start(self) -> EngineInfo:
        """Broker, engine, workers; StartupError (one line) when something refuses."""
        try:
            url, management_url = self._broker_url()
            self._check_open()
            engine = Engine(
                EngineConfig(
                    url=url,
                    management_url=management_url,
                    queue=self.options.queue_spec(),
                    seconds_per_dot=self.options.seconds_per_dot,
                    worker_heartbeat=self.options.heartbeat,
                    max_body_bytes=self.options.max_task_bytes,
                    connection_name="tui-queue",
                    recent_length=self.options.list_length,
                ),
                control=self._broker,
            )
            with self._lock:
                self._check_open()
                # Subscribed before anything starts, so the dashboard sees every worker arrive.
                self._subscription = engine.bus.subscribe(self._subscriber, self._kinds())
                self._engine = engine
            engine.start()
            self._attach_workers(engine)
            return engine.info()
        except (BrokerConnectError, BrokerStartError, SettingsError) as error:
            self._release()  # whatever did start (the broker child, engine threads) goes
            raise StartupError(_one_line(error)) from None

    def _broker_url(self) -> tuple[str, str | None]:
        if self.options.url is not None:
            return self.options.url, self.options.management_url
        port = self.options.broker_port
        if port is None:
            port = TUTORIAL_PORT if tutorial_port_free() else 0
        try:
            broker = self._spawn_broker(port)
        except BrokerStartError:
            if self.options.broker_port is not None or port != TUTORIAL_PORT:
                raise
            # 5672 was taken between the check and the bind: any free port will do.
            broker = self._spawn_broker(0)
        return broker.url, broker.management_url

    def _spawn_broker(self, port: int) -> BrokerProcess:
        broker = BrokerProcess(port=port, data_dir=self.options.data_dir)
        with self._lock:
            self._check_open()
            self._broker = broker
        try:
            broker.start()
        except BrokerStartError:
            broker.stop()
            with self._lock:
                self._broker = None
            raise
        return broker

    def _attach_workers(self, engine: Engine) -> None:
        """One at a time, each consuming before the next: the broker's round-robin then starts
        with w1, as a reader of the tutorial expects."""
        settings = WorkerSettings(prefetch=self.options.prefetch)
        with EventWaiter(engine.bus, keep=lambda e: isinstance(e, WorkerStateChanged)) as waiter:
            for _ in range(self.options.workers):
                self._check_open()
                name = engine.add_worker(settings)
                waiter.wait_for(
                    lambda name=name: (
                        self._closing.is_set() or engine.worker(name).state in _SETTLED
                    ),
                    WORKER_ATTACH_TIMEOUT,
                )

    def _check_open(self) -> None:
        if self._closing.is_set():
            raise _Closed

    def follow_each_message(self, follow: bool) -> None:
        """Whether the subscriber takes the per-message events (the engine builds none when
        nobody does). UI thread; takes effect at once, or at start."""
        with self._lock:
            if follow == self._each_message:
                return
            self._each_message = follow
            if self._subscription is not None:
                self._subscription.set_kinds(self._kinds())

    def _kinds(self) -> tuple[type[Event], ...] | None:
        return None if self._each_message else events_but_per_message()

    # --- stop ---------------------------------------------------------------------------------

    def stop(self, include_broker: bool = True) -> None:
        """Idempotent; returns once every engine thread (and, with include_broker, the broker
        child) has ended. A later stop() stops a broker left running by the first."""
        self._closing.set()
        starter = self._starter
        if starter is not None and starter is not threading.current_thread():
            starter.join()
        self._release(include_broker)

    def _release(self, include_broker: bool = True) -> None:
        with self._lock:
            subscription, self._subscription = self._subscription, None
            engine, self._engine = self._engine, None
            broker = self._broker
            if include_broker:
                self._broker = None
        if subscription is not None:
            subscription.close()
        if engine is not None:
            engine.stop()
        if broker is not None and include_broker:
            broker.stop()


def tutorial_port_free(host: str = "127.0.0.1") -> bool:
    """Whether the broker could listen on 5672. Bound as the broker binds (SO_REUSEADDR), so
    connections of an earlier run lingering in TIME_WAIT do not count as taken; a listener does."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, TUTORIAL_PORT))
        except OSError:
            return False
        return True


def _one_line(error: BaseException) -> str:
    return " ".join((str(error) or type(error).__name__).split())
