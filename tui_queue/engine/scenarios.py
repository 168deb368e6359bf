"""Scripted runs of the tutorial's lessons, each ending in a report of what the broker did.

A scenario drives a real engine against a real broker, waits on engine events (never on guessed
sleeps), and checks the outcome the tutorial promises: round-robin splits 1,3,5 / 2,4; fair
dispatch beats round-robin on heavy/light tasks by the margin the dispatch model predicts; a killed
worker's messages come back under manual ack and are lost under auto-ack; a forgotten ack stalls
a worker at its prefetch; persistent messages in a durable queue survive a broker restart.
Each run uses its own queue (deleted afterwards) so it never takes a tutorial worker's tasks.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pika.exceptions

from tui_queue.engine.broker_control import BrokerControl
from tui_queue.engine.config import (
    EngineConfig,
    KillMode,
    QueueSpec,
    SettingsError,
    WorkerSettings,
    validate_prefetch,
    validate_seconds_per_dot,
)
from tui_queue.engine.connect import LINK_ERRORS, one_line, one_off_channel, safe_url
from tui_queue.engine.dispatch_model import predict_dispatch
from tui_queue.engine.engine import Engine
from tui_queue.engine.events import (
    Event,
    EventWaiter,
    MessagePublished,
    MessageReceived,
    PublishOutcome,
    WorkDone,
    WorkerKilled,
    WorkerState,
    WorkStarted,
)
from tui_queue.engine.tasks import TUTORIAL_TASKS, dots, heavy_light_bodies

SCENARIOS = ("round-robin", "heavy-light", "kill", "auto-ack-kill", "forgotten-ack", "durability")
# Enough for any lesson; a typo such as 200 would start 200 threads and connections.
MAX_WORKERS = 32


class ScenarioError(Exception):
    """The scenario could not run (or timed out waiting); str() is one line."""


@dataclass(frozen=True, slots=True)
class ScenarioOptions:
    url: str
    management_url: str | None = None
    control: BrokerControl | None = None
    workers: int | None = None  # None: the scenario's own default
    prefetch: int | None = None
    seconds_per_dot: float = 0.1
    queue: str | None = None  # None: a fresh "tq-<scenario>-<random>" queue
    heartbeat: int | None = None
    timeout: float = 60.0  # for each wait inside the scenario
    kill_mode: KillMode = KillMode.CRASH

    def __post_init__(self) -> None:
        if self.workers is not None and not 1 <= self.workers <= MAX_WORKERS:
            raise SettingsError(f"workers must be between 1 and {MAX_WORKERS}")
        if self.prefetch is not None:
            validate_prefetch(self.prefetch)
        validate_seconds_per_dot(self.seconds_per_dot)
        if not self.timeout > 0:
            raise SettingsError("timeout must be positive")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class WorkerRow:
    worker: str
    received: int
    done: int
    busy: float
    redelivered: int
    requeued: int
    lost: int
    duplicates: int
    # sequence numbers (1 = first task published) of first deliveries, in arrival order
    first_deliveries: tuple[int, ...]


@dataclass(frozen=True)
class ScenarioReport:
    scenario: str
    broker: str
    checks: tuple[Check, ...]
    workers: tuple[WorkerRow, ...]
    published: int
    done: int
    lost: int
    duplicates: int
    redelivered: int
    makespan: float
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


class _Run:
    """One engine on one queue, plus the event recording a scenario waits on."""

    def __init__(
        self, options: ScenarioOptions, queue: QueueSpec, confirms: bool = False, label: str = ""
    ) -> None:
        self.options = options
        self.label = label
        self.engine = Engine(
            EngineConfig(
                url=options.url,
                management_url=options.management_url,
                queue=queue,
                seconds_per_dot=options.seconds_per_dot,
                worker_heartbeat=options.heartbeat,
                publisher_confirms=confirms,
            ),
            control=options.control,
        )
        self.events = EventWaiter(self.engine.bus, keep=_worth_keeping)
        self.checks: list[Check] = []
        self.started_at: float | None = None

    def __enter__(self) -> _Run:
        self.engine.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.events.close()
        self.engine.stop()
        if self.options.queue is None:  # ours alone: leave nothing behind on the broker
            with contextlib.suppress(*LINK_ERRORS):
                _delete_queue(self.options.url, self.engine.queue_spec().name)

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float | None = None) -> None:
        if not self.events.wait_for(predicate, timeout or self.options.timeout):
            raise ScenarioError(f"timed out waiting for {what}")

    def add_workers(self, count: int, settings: WorkerSettings) -> list[str]:
        """Add workers one after the other, each subscribed before the next: the broker's
        round-robin order is subscription order, and the tutorial's 1,3,5 / 2,4 depends on it."""
        names = []
        for _ in range(count):
            name = self.engine.add_worker(settings)
            self.wait_state(name, WorkerState.IDLE)
            names.append(name)
        return names

    def wait_state(self, name: str, state: WorkerState) -> None:
        self.wait(lambda: self.engine.worker(name).state is state, f"{name} to be {state.value}")

    def publish(self, bodies: Sequence[str], persistent: bool = True) -> list[int]:
        if self.started_at is None:
            self.started_at = time.monotonic()
        results = self.engine.publish(list(bodies), persistent).wait(self.options.timeout)
        refused = (PublishOutcome.FAILED, PublishOutcome.NACKED)
        failed = [r for r in results if r.seq is None or r.outcome in refused]
        if failed:
            raise ScenarioError(f"publish failed: {failed[0].detail}")
        return [r.seq for r in results if r.seq is not None]

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(name, bool(ok), detail))

    def received_by(self, name: str) -> list[int]:
        return [
            e.seq
            for e in self.events.of_type(MessageReceived)
            if e.worker == name and e.seq is not None and not e.redelivered
        ]

    def makespan(self) -> float:
        done = self.events.of_type(WorkDone)
        if self.started_at is None or not done:
            return 0.0
        return max(e.at for e in done) - self.started_at

    def rows(self, prefix: str = "") -> list[WorkerRow]:
        rows = []
        by_name = sorted(
            self.engine.ledger.all_worker_counts(), key=lambda c: (len(c.worker), c.worker)
        )
        for counts in by_name:
            rows.append(
                WorkerRow(
                    worker=prefix + counts.worker,
                    received=counts.received,
                    done=counts.done,
                    busy=round(counts.busy, 3),
                    redelivered=counts.redelivered,
                    requeued=counts.requeued,
                    lost=counts.lost,
                    duplicates=counts.duplicates,
                    first_deliveries=tuple(self.received_by(counts.worker)),
                )
            )
        return rows

    def broker_counts(self) -> tuple[int, int]:
        return self.engine.passive_declare(self.options.timeout)

    def report(self, scenario: str, **facts: Any) -> ScenarioReport:
        totals = self.engine.totals()
        return ScenarioReport(
            scenario=scenario,
            broker=safe_url(self.options.url),
            checks=tuple(self.checks),
            workers=tuple(self.rows()),
            published=totals.published,
            done=totals.done,
            lost=totals.lost,
            duplicates=totals.duplicates,
            redelivered=totals.redelivered,
            makespan=round(self.makespan(), 3),
            facts=facts,
        )


def _worth_keeping(event: Event) -> bool:
    # Per-message events and kills; state changes and stats ticks still wake the waiters.
    return isinstance(
        event, MessagePublished | MessageReceived | WorkStarted | WorkDone | WorkerKilled
    )


def _queue(options: ScenarioOptions, scenario: str, durable: bool = True) -> QueueSpec:
    name = options.queue or f"tq-{scenario}-{secrets.token_hex(3)}"
    return QueueSpec(name=name, durable=durable)


def _seqs(values: Sequence[int]) -> str:
    return ",".join(str(v) for v in values) or "nothing"


# --- the scenarios -------------------------------------------------------------------------------


def round_robin(options: ScenarioOptions) -> ScenarioReport:
    workers = options.workers or 2
    prefetch = options.prefetch if options.prefetch is not None else 0
    with _Run(options, _queue(options, "round-robin")) as run:
        names = run.add_workers(workers, WorkerSettings(prefetch=prefetch))
        seqs = run.publish(TUTORIAL_TASKS)
        run.wait(lambda: run.engine.totals().done == len(seqs), "every task to be done")
        durations = [dots(body) * options.seconds_per_dot for body in TUTORIAL_TASKS]
        predicted = predict_dispatch(durations, workers, prefetch)
        for name, expected in zip(names, predicted.assignments, strict=True):
            want = [seqs[i] for i in expected]
            got = run.received_by(name)
            run.check(f"{name} got {_seqs(want)}", got == want, f"got {_seqs(got)}")
        totals = run.engine.totals()
        run.check("nothing lost or duplicated", totals.lost == 0 and totals.duplicates == 0)
        return run.report("round-robin", prefetch=prefetch)


def heavy_light(options: ScenarioOptions) -> ScenarioReport:
    """The same heavy/light batch with prefetch 0, then prefetch N: fair dispatch wins."""
    workers = options.workers or 2
    fair = options.prefetch or 1  # --prefetch 0 would compare round-robin with itself
    bodies = heavy_light_bodies(8, heavy_dots=4, light_dots=1)
    durations = [dots(body) * options.seconds_per_dot for body in bodies]
    phases: dict[int, tuple[float, list[WorkerRow], list[Check]]] = {}
    published = done = lost = duplicates = redelivered = 0
    for prefetch in (0, fair):
        with _Run(options, _queue(options, f"heavy-light-p{prefetch}")) as run:
            run.add_workers(workers, WorkerSettings(prefetch=prefetch))
            seqs = run.publish(bodies)
            count = len(seqs)
            run.wait(lambda run=run, n=count: run.engine.totals().done == n, "every task done")
            phases[prefetch] = (run.makespan(), run.rows(f"p{prefetch}:"), run.checks)
            totals = run.engine.totals()
            published += totals.published
            done += totals.done
            lost += totals.lost
            duplicates += totals.duplicates
            redelivered += totals.redelivered
    slow, fair_time = phases[0][0], phases[fair][0]
    predicted_slow = predict_dispatch(durations, workers, 0).makespan
    predicted_fair = predict_dispatch(durations, workers, fair).makespan
    margin, predicted_margin = slow - fair_time, predicted_slow - predicted_fair
    checks = [
        Check(
            f"prefetch {fair} finishes sooner than prefetch 0",
            fair_time < slow,
            f"{fair_time:.2f} s against {slow:.2f} s",
        ),
        Check(
            "by the margin the dispatch model predicts",
            # Half the predicted margin at least: connection and ack round trips eat into it.
            margin >= 0.5 * predicted_margin,
            f"{margin:.2f} s measured, {predicted_margin:.2f} s predicted",
        ),
    ]
    return ScenarioReport(
        scenario="heavy-light",
        broker=safe_url(options.url),
        checks=tuple(checks),
        workers=tuple(phases[0][1] + phases[fair][1]),
        published=published,
        done=done,
        lost=lost,
        duplicates=duplicates,
        redelivered=redelivered,
        makespan=round(slow + fair_time, 3),
        facts={
            "makespan_prefetch_0": round(slow, 3),
            f"makespan_prefetch_{fair}": round(fair_time, 3),
            "predicted_prefetch_0": round(predicted_slow, 3),
            f"predicted_prefetch_{fair}": round(predicted_fair, 3),
            "margin": round(margin, 3),
            "predicted_margin": round(predicted_margin, 3),
        },
    )


def _busy_victim(run: _Run, victim: str) -> None:
    run.events.wait_event(WorkStarted, lambda e: e.worker == victim, run.options.timeout)


# A hung worker is given up on only at heartbeat timeout (2-3 heartbeats): the kill scenario
# uses this heartbeat for a hang unless told otherwise, so the run takes seconds, not minutes.
HANG_HEARTBEAT = 1


def kill(options: ScenarioOptions) -> ScenarioReport:
    """Kill a busy worker under manual ack: its messages come back, redelivered; none lost.
    crash and clean give them back at once, hang at the heartbeat timeout; cancel keeps them
    (basic.cancel stops deliveries, not the worker) and finishes them itself."""
    mode = options.kill_mode
    if mode is KillMode.HANG and options.heartbeat is None:
        options = replace(options, heartbeat=HANG_HEARTBEAT)
    workers = max(options.workers or 2, 2)
    prefetch = options.prefetch if options.prefetch is not None else 1
    with _Run(options, _queue(options, "kill")) as run:
        names = run.add_workers(workers, WorkerSettings(prefetch=prefetch))
        victim = names[0]
        seqs = run.publish([f"Task {n}..." for n in range(1, 7)])
        _busy_victim(run, victim)
        held = run.engine.ledger.held_by(victim)
        run.engine.kill(victim, mode)
        killed = run.events.wait_event(WorkerKilled, timeout=options.timeout)
        run.wait(lambda: run.engine.totals().done == len(seqs), "every task to be done")
        totals = run.engine.totals()
        redelivered = [e for e in run.events.of_type(MessageReceived) if e.redelivered]
        ready, _consumers = run.broker_counts()
        if mode is KillMode.CANCEL:
            run.check(
                f"{victim} keeps and finishes what it held",
                run.engine.ledger.worker_counts(victim).done >= held and not redelivered,
                f"held {held}, {len(redelivered)} redelivered",
            )
        else:
            given_back = killed.requeued if mode is not KillMode.HANG else len(redelivered)
            run.check(
                f"{victim}'s unacked messages went back to the queue",
                given_back >= 1 and killed.lost == 0,
                f"{given_back} requeued"
                + (" at the heartbeat timeout" if mode is KillMode.HANG else "")
                + f", {killed.lost} lost",
            )
            run.check(
                "they were delivered again, marked redelivered",
                len(redelivered) >= given_back and all(e.worker != victim for e in redelivered),
                f"{len(redelivered)} redelivered to {sorted({e.worker for e in redelivered})}",
            )
        run.check("nothing lost", totals.lost == 0, f"lost {totals.lost}")
        check = run.engine.ledger.check(ready, run.engine.ledger.unacked_count())
        run.check(
            "published = done + ready + unacked + lost",
            check.holds and totals.done == len(seqs),
            f"{check.published} = {check.done} + {check.ready} + {check.unacked} + {check.lost}",
        )
        return run.report("kill", victim=victim, mode=mode.value)


def auto_ack_kill(options: ScenarioOptions) -> ScenarioReport:
    """Kill a busy worker under auto-ack: what it held is lost, and counted exactly."""
    workers = max(options.workers or 2, 2)
    with _Run(options, _queue(options, "auto-ack-kill")) as run:
        names = run.add_workers(workers, WorkerSettings(auto_ack=True))
        victim = names[0]
        seqs = run.publish([f"Task {n}..." for n in range(1, 7)])
        # With auto-ack the broker pushes everything at once; wait until it has all arrived, so
        # every loss is one the ledger saw (none is still on the wire).
        run.wait(lambda: run.engine.totals().delivered >= len(seqs), "every task to be delivered")
        _busy_victim(run, victim)
        held = run.engine.ledger.held_by(victim)
        run.engine.kill(victim, options.kill_mode)
        killed = run.events.wait_event(WorkerKilled, timeout=options.timeout)
        run.wait(
            lambda: (t := run.engine.totals()).done + t.lost == len(seqs),
            "the other workers to finish",
        )
        totals = run.engine.totals()
        run.check(
            "the killed worker's messages are lost",
            killed.lost == held and held >= 1,
            f"held {held}, lost {killed.lost}",
        )
        run.check("loss counted exactly", totals.lost == held, f"ledger lost {totals.lost}")
        run.check(
            "nothing came back",
            totals.redelivered == 0 and totals.duplicates == 0,
            f"{totals.redelivered} redelivered",
        )
        run.check(
            "published = done + lost",
            totals.published == totals.done + totals.lost,
            f"{totals.published} = {totals.done} + {totals.lost}",
        )
        return run.report("auto-ack-kill", victim=victim, held_at_kill=held)


def forgotten_ack(options: ScenarioOptions) -> ScenarioReport:
    """A worker that never acks: unacked climbs to its prefetch and it stalls; the messages come
    back (and are done again) only when it dies."""
    workers = options.workers or 2
    prefetch = options.prefetch or 2
    count = 8
    with _Run(options, _queue(options, "forgotten-ack")) as run:
        forgetful = run.add_workers(1, WorkerSettings(prefetch=prefetch, forget_ack=True))[0]
        run.add_workers(workers - 1, WorkerSettings(prefetch=1))
        seqs = run.publish([f"Task {n}." for n in range(1, count + 1)])
        ledger = run.engine.ledger
        if workers > 1:
            run.wait(lambda: ledger.totals().completions == count, "every task worked once")
        else:
            run.wait(
                lambda: ledger.worker_counts(forgetful).done == prefetch,
                f"{forgetful} to work {prefetch} tasks",
            )
            run.wait_state(forgetful, WorkerState.IDLE)
        stalled = ledger.worker_counts(forgetful)
        ready, _consumers = run.broker_counts()
        unacked = ledger.totals().unacked
        run.check(
            f"{forgetful} stalls at its prefetch ({prefetch})",
            stalled.received == prefetch and stalled.done == prefetch,
            f"received {stalled.received}, done {stalled.done}",
        )
        run.check(
            "its messages stay unacked in the broker",
            unacked == prefetch,
            f"unacked {unacked}, ready {ready}",
        )
        run.engine.kill(forgetful, KillMode.CLEAN)
        run.events.wait_event(WorkerKilled, timeout=options.timeout)
        if workers == 1:
            run.engine.set_forget_ack(False, forgetful)
            run.engine.revive(forgetful)
        run.wait(
            lambda: ledger.totals().done == len(seqs) and ledger.totals().unacked == 0,
            "the returned messages to be done",
        )
        totals = ledger.totals()
        run.check(
            "they return when it dies, redelivered",
            totals.requeued == prefetch and totals.redelivered == prefetch,
            f"{totals.requeued} requeued, {totals.redelivered} redelivered",
        )
        run.check(
            "and are done twice (at-least-once)",
            totals.duplicates == prefetch,
            f"{totals.duplicates} duplicates",
        )
        return run.report("forgotten-ack", forgetful=forgetful, prefetch=prefetch)


def durability(options: ScenarioOptions) -> ScenarioReport:
    """Restart the broker: persistent messages in a durable queue survive, transient ones don't,
    and neither does a transient queue."""
    control = options.control
    if control is None:
        raise ScenarioError(
            "durability restarts the broker: run it without --url (embedded broker) "
            "or give the engine a broker control"
        )
    count = 5
    with _Run(options, _queue(options, "durability"), confirms=True) as run:
        spec = run.engine.queue_spec()
        transient_queue = f"{spec.name}-transient"
        _declare_transient_queue(options.url, transient_queue)
        persistent_ids = set(run.publish([f"Persistent {n}." for n in range(1, count + 1)]))
        transient_ids = set(
            run.publish([f"Transient {n}." for n in range(1, count + 1)], persistent=False)
        )
        run.engine.restart_broker(kill=True)
        ready_after, _consumers = run.broker_counts()
        transient_queue_survived = _queue_exists(options.url, transient_queue)
        run.add_workers(options.workers or 2, WorkerSettings(prefetch=1))
        run.wait(lambda: run.engine.totals().completions >= ready_after, "the survivors to be done")
        done_ids = {e.seq for e in run.events.of_type(WorkDone) if e.seq is not None}
        written_off = run.engine.ledger.write_off_ready("not there after the restart")
        expected = count if (spec.durable and control.durable_store) else 0
        run.check(
            "persistent messages in the durable queue survive",
            ready_after == expected and done_ids == (persistent_ids if expected else set()),
            f"{ready_after} in the queue after the restart, {expected} expected",
        )
        run.check(
            "transient messages do not",
            not (done_ids & transient_ids),
            f"{len(done_ids & transient_ids)} transient survived",
        )
        run.check("a transient queue does not", not transient_queue_survived, transient_queue)
        _delete_queue(options.url, transient_queue)
        return run.report(
            "durability",
            survived=ready_after,
            expected=expected,
            written_off=len(written_off),
            embedded=control.is_embedded,
        )


def _declare_transient_queue(url: str, name: str) -> None:
    with one_off_channel(url, "tui-queue scenario") as channel:
        channel.queue_declare(name, durable=False)
        channel.basic_publish("", name, b"in a transient queue")


def _queue_exists(url: str, name: str) -> bool:
    with one_off_channel(url, "tui-queue scenario") as channel:
        try:
            channel.queue_declare(name, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return False
        return True


def _delete_queue(url: str, name: str) -> None:
    with one_off_channel(url, "tui-queue scenario") as channel:
        channel.queue_delete(name)


_RUNNERS: dict[str, Callable[[ScenarioOptions], ScenarioReport]] = {
    "round-robin": round_robin,
    "heavy-light": heavy_light,
    "kill": kill,
    "auto-ack-kill": auto_ack_kill,
    "forgotten-ack": forgotten_ack,
    "durability": durability,
}


def run_scenario(name: str, options: ScenarioOptions) -> ScenarioReport:
    """Run one scenario. Raises ScenarioError (one line) when it cannot finish, BrokerConnectError
    when the broker cannot be reached at the start, SettingsError for a nonsense option."""
    try:
        runner = _RUNNERS[name]
    except KeyError:
        raise ScenarioError(f"no scenario {name!r}; choose from {', '.join(SCENARIOS)}") from None
    try:
        return runner(options)
    except TimeoutError as error:  # a wait on an event, a publish or a broker answer
        raise ScenarioError(f"{name}: timed out: {one_line(error)}") from None
    except (pika.exceptions.AMQPError, OSError) as error:
        raise ScenarioError(f"{name}: the broker failed: {one_line(error)}") from None


__all__ = [
    "SCENARIOS",
    "Check",
    "ScenarioError",
    "ScenarioOptions",
    "ScenarioReport",
    "WorkerRow",
    "run_scenario",
]
