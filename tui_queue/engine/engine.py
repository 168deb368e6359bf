"""The engine: workers, publisher, ledger and stats poller wired together behind one object.

Every method is safe to call from any thread (the dashboard's UI thread, a script) and returns
without waiting on the network, except start(), stop(), purge(), redeclare_queue() and
restart_broker(), which block for the broker's answer. What happens is told by events on `bus`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import pika.exceptions

from tui_queue.engine.broker_control import BrokerControl
from tui_queue.engine.config import (
    AckTiming,
    EngineConfig,
    KillMode,
    QueueSpec,
    SettingsError,
    WorkerSettings,
    validate_seconds_per_dot,
)
from tui_queue.engine.connect import (
    BrokerConnectError,
    declare_queue,
    one_off_channel,
    safe_url,
    url_parts,
)
from tui_queue.engine.events import (
    BrokerState,
    BrokerStateChanged,
    EventBus,
    QueuePurged,
    QueueRedeclared,
    WorkerAdded,
    WorkerRemoved,
    announce_released,
)
from tui_queue.engine.ledger import Ledger, LedgerTotals, WorkerCounts
from tui_queue.engine.publisher import Publisher, PublishTicket
from tui_queue.engine.recent import RecentTasks
from tui_queue.engine.stats import QueueStats, StatsPoller
from tui_queue.engine.tasks import HELLO, heavy_light_bodies
from tui_queue.engine.worker import Worker, WorkerConnection, WorkerSnapshot


class QueueMismatch(BrokerConnectError):
    """The queue exists with other settings (RabbitMQ answers 406 PRECONDITION_FAILED)."""


class UnknownWorker(KeyError):
    pass


@dataclass(frozen=True, slots=True)
class EngineInfo:
    url: str  # without the password
    host: str
    port: int
    vhost: str
    embedded: bool
    management_url: str | None
    queue: QueueSpec


class Engine:
    def __init__(
        self,
        config: EngineConfig,
        control: BrokerControl | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.config = config
        self.control = control
        self.bus = EventBus()
        self.ledger = ledger or Ledger()
        self._lock = threading.RLock()
        self._queue = config.queue
        self._spd = config.seconds_per_dot
        self._recent_length = config.recent_length
        self._workers: dict[str, Worker] = {}
        # Removed workers whose thread had not ended within remove_worker's timeout: stop()
        # joins them too, so no thread outlives the engine unnoticed.
        self._retired: list[Worker] = []
        self._next_worker = 1
        self._started = False
        self._stopped = False
        self._link = WorkerConnection(
            url=config.url,
            heartbeat=config.worker_heartbeat,
            reconnect_delay=config.reconnect_delay,
            reconnect_delay_max=config.reconnect_delay_max,
            connection_name=config.connection_name,
        )
        self._publisher = Publisher(
            config.url,
            self.queue_spec,
            self.ledger,
            self.bus,
            confirms=config.publisher_confirms,
            max_body_bytes=config.max_body_bytes,
            connection_name=config.connection_name,
        )
        self._stats = StatsPoller(
            config.url,
            config.management_url,
            self.queue_spec,
            self.ledger,
            self.bus,
            interval=config.stats_interval,
            connection_name=config.connection_name,
        )

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Check the broker answers and the queue can be declared, then start the threads.
        Raises BrokerConnectError (or QueueMismatch) with a one-line message."""
        check_queue(self.config.url, self._queue)
        with self._lock:
            if self._stopped or self._started:
                return  # stopped meanwhile (nothing may outlive stop()), or started already
            self._started = True
            self._publisher.start()
            self._stats.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop every worker (cleanly: unacked go back to the queue), the publisher and the stats
        poller, and join their threads. True when every thread has ended."""
        with self._lock:
            self._stopped = True
            workers = [*self._workers.values(), *self._retired]
        for worker in workers:
            worker.request_stop()  # all at once: they close in parallel, then are joined
        ended = all([worker.stop(timeout) for worker in workers])  # a list: join every one
        if self._started:
            ended = self._publisher.stop(timeout) and ended
            ended = self._stats.stop(timeout) and ended
        return ended

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def info(self) -> EngineInfo:
        host, port, vhost, _user, _password = url_parts(self.config.url)
        management = self.config.management_url
        if self.control is not None:
            management = self.control.management_url
        return EngineInfo(
            url=safe_url(self.config.url),
            host=host,
            port=port,
            vhost=vhost,
            embedded=bool(self.control is not None and self.control.is_embedded),
            management_url=management,
            queue=self._queue,
        )

    def queue_spec(self) -> QueueSpec:
        return self._queue

    # --- workers ------------------------------------------------------------------------------

    def add_worker(self, settings: WorkerSettings | None = None, name: str | None = None) -> str:
        with self._lock:
            if self._stopped:
                raise RuntimeError("the engine is stopped")
            if name is None:
                while f"w{self._next_worker}" in self._workers:
                    self._next_worker += 1
                name = f"w{self._next_worker}"
                self._next_worker += 1
            elif name in self._workers:
                raise SettingsError(f"there is already a worker named {name!r}")
            settings = settings or WorkerSettings()
            worker = Worker(
                name,
                self._link,
                self.queue_spec,
                self.ledger,
                self.bus,
                settings=settings,
                seconds_per_dot=self._spd,
                recent_length=self._recent_length,
            )
            self._workers[name] = worker
            # Under the lock, so a concurrent stop() either refuses this worker or joins it;
            # WorkerAdded first, so subscribers hear of the worker before its first state.
            self.bus.emit(WorkerAdded(worker=name, settings=settings))
            worker.start()
        return name

    def remove_worker(self, name: str, timeout: float = 10.0) -> None:
        with self._lock:
            worker = self._worker(name)
            del self._workers[name]
            self._retired.append(worker)
        if worker.stop(timeout):
            with self._lock:
                self._retired.remove(worker)
        self.bus.emit(WorkerRemoved(worker=name))

    def worker_names(self) -> list[str]:
        with self._lock:
            return list(self._workers)

    def workers(self) -> list[WorkerSnapshot]:
        with self._lock:
            return [worker.snapshot() for worker in self._workers.values()]

    def worker(self, name: str) -> WorkerSnapshot:
        with self._lock:
            return self._worker(name).snapshot()

    def recent_tasks(self, name: str) -> RecentTasks:
        """The worker's latest tasks, kept by the worker: for readers that skip the per-message
        events (a dashboard in a flood). Read-only; see engine/recent.py."""
        with self._lock:
            return self._worker(name).recent

    def worker_counts(self) -> tuple[WorkerCounts, ...]:
        """The ledger's exact per-worker counts, one for each worker it has seen."""
        return self.ledger.all_worker_counts()

    def settings(self, name: str) -> WorkerSettings:
        """The worker's settings as last set (its snapshot shows them once applied)."""
        with self._lock:
            return self._worker(name).requested_settings

    def _worker(self, name: str) -> Worker:
        try:
            return self._workers[name]
        except KeyError:
            raise UnknownWorker(name) from None

    def _targets(self, name: str | None) -> list[str]:
        if name is None:
            return list(self._workers)
        self._worker(name)
        return [name]

    def update_workers(
        self, name: str | None = None, requeue_held: bool = False, **changes: object
    ) -> None:
        """Change settings of one worker (or all when name is None). Invalid values raise
        SettingsError and change nothing."""
        with self._lock:
            workers = [self._workers[target] for target in self._targets(name)]
            # Every new value is checked before any worker hears of it.
            updated = [worker.requested_settings.with_changes(**changes) for worker in workers]
            for worker, settings in zip(workers, updated, strict=True):
                worker.update(settings, requeue_held)

    def set_prefetch(
        self, prefetch: int, name: str | None = None, requeue_held: bool = False
    ) -> None:
        self.update_workers(name, requeue_held, prefetch=prefetch)

    def set_auto_ack(self, auto_ack: bool, name: str | None = None) -> None:
        self.update_workers(name, auto_ack=auto_ack)

    def set_ack_timing(self, timing: AckTiming, name: str | None = None) -> None:
        self.update_workers(name, ack_timing=AckTiming(timing))

    def set_forget_ack(self, forget: bool, name: str | None = None) -> None:
        self.update_workers(name, forget_ack=forget)

    @property
    def seconds_per_dot(self) -> float:
        return self._spd

    def set_seconds_per_dot(self, seconds: float) -> None:
        """Applies to tasks started from now on."""
        value = validate_seconds_per_dot(seconds)
        with self._lock:
            self._spd = value
            for worker in self._workers.values():
                worker.set_seconds_per_dot(value)

    def pause(self, name: str) -> None:
        with self._lock:
            self._worker(name).pause()

    def resume(self, name: str) -> None:
        with self._lock:
            self._worker(name).resume()

    def kill(self, name: str, mode: KillMode = KillMode.CRASH) -> None:
        with self._lock:
            self._worker(name).kill(KillMode(mode))

    def revive(self, name: str) -> None:
        with self._lock:
            self._worker(name).revive()

    # --- tasks --------------------------------------------------------------------------------

    def publish(
        self, bodies: str | bytes | Sequence[str | bytes], persistent: bool = True
    ) -> PublishTicket:
        """Publish tasks as new_task.py does (an empty body becomes "Hello World!").
        Raises TaskTooLarge before anything is sent if one is over the size limit."""
        if isinstance(bodies, str | bytes):
            bodies = [bodies]
        fixed = [body if body else HELLO for body in bodies]
        return self._publisher.publish(fixed, persistent)

    def publish_copies(self, body: str, copies: int, persistent: bool = True) -> PublishTicket:
        if copies < 1:
            raise SettingsError("copies must be at least 1")
        return self.publish([body] * copies, persistent)

    def publish_heavy_light(
        self, count: int, heavy_dots: int = 5, light_dots: int = 1, persistent: bool = True
    ) -> PublishTicket:
        if count < 1:
            raise SettingsError("count must be at least 1")
        return self.publish(heavy_light_bodies(count, heavy_dots, light_dots), persistent)

    # --- queue and broker ---------------------------------------------------------------------

    def purge(self, timeout: float = 10.0) -> int:
        """queue.purge: ready messages go; held ones stay with their workers."""
        count = self._publisher.purge().result(timeout)
        announce_released(self.bus, (), self.ledger.purged(), "purged")
        self.bus.emit(QueuePurged(queue=self._queue.name, count=count))
        self._stats.poke()
        return count

    def redeclare_queue(self, spec: QueueSpec, timeout: float = 10.0) -> None:
        """Delete the queue and declare it anew (e.g. classic -> quorum): RabbitMQ refuses a
        declare with other arguments (406 PRECONDITION_FAILED - inequivalent arg), so this is the
        only way. Its ready messages are deleted; workers consume the new queue by themselves."""
        old = self._queue
        with self._lock:
            self._queue = spec  # first, so workers cancelled by the delete redeclare the new one
        self._publisher.delete_queue(old.name).result(timeout)
        self._publisher.declare(spec).result(timeout)
        announce_released(self.bus, (), self.ledger.purged(), "queue deleted")
        self.bus.emit(QueueRedeclared(spec=spec))
        self._stats.poke()

    def restart_broker(self, kill: bool = True) -> None:
        """Restart the broker through the BrokerControl; workers reconnect by themselves.
        What survives follows RabbitMQ's rule: persistent messages in a durable queue."""
        control = self.control
        if control is None:
            raise RuntimeError("this engine has no control over its broker (started with --url)")
        self.bus.emit(
            BrokerStateChanged(state=BrokerState.RESTARTING, detail="kill" if kill else "stop")
        )
        survives = self._queue.durable and control.durable_store
        requeued, lost = self.ledger.broker_restarting(survives)
        announce_released(self.bus, requeued, lost, "broker restart")
        control.restart(kill)
        self.bus.emit(BrokerStateChanged(state=BrokerState.UP))
        self._stats.poke()

    # --- reading ------------------------------------------------------------------------------

    def totals(self) -> LedgerTotals:
        return self.ledger.totals()

    def stats(self) -> QueueStats | None:
        """The latest sample of the stats poller (None before the first)."""
        return self._stats.latest()

    def passive_declare(self, timeout: float = 10.0) -> tuple[int, int]:
        """(ready, consumers) from queue.declare-ok, now: the broker's real-time count."""
        return self._publisher.passive_declare().result(timeout)

    def threads_alive(self) -> list[str]:
        """Names of this engine's threads still running (empty after stop())."""
        with self._lock:
            workers = [*self._workers.values(), *self._retired]
        alive = [f"worker {w.name}" for w in workers if w.alive]
        if self._publisher.alive:
            alive.append("publisher")
        if self._stats.alive:
            alive.append("stats")
        return alive


def check_queue(url: str, spec: QueueSpec) -> None:
    """Connect and declare the queue on the calling thread, then close: the one-line error now
    rather than a worker retrying forever."""
    with one_off_channel(url, "tui-queue check") as channel:
        try:
            declare_queue(channel, spec)
        except pika.exceptions.ChannelClosedByBroker as error:
            raise QueueMismatch(
                f"queue {spec.name!r} cannot be declared as {spec.queue_type.value}"
                f"{' durable' if spec.durable else ''}: {error.reply_text}"
            ) from None
