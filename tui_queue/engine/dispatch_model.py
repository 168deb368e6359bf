"""A pure model of RabbitMQ's dispatch to work-queue consumers, for expected outcomes.

It predicts who gets which message and when the last task finishes, so the heavy-light scenario can
say what margin fair dispatch should win by, instead of a guessed constant. The rules are the
broker's (amqp-broker-spec.md, "Dispatch"): a delivery goes to the head consumer that has credit,
which then moves to the tail; a consumer out of credit is parked and rejoins at the tail when an ack
frees credit; prefetch 0 means unlimited credit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DispatchPrediction:
    # assignments[w] = indexes (0-based, publish order) of the messages worker w processes.
    assignments: tuple[tuple[int, ...], ...]
    # finish time of each worker's last task, in the same unit as the durations.
    finish: tuple[float, ...]

    @property
    def makespan(self) -> float:
        return max(self.finish, default=0.0)


def predict_dispatch(durations: Sequence[float], workers: int, prefetch: int) -> DispatchPrediction:
    """Messages all published at t=0 to idle consumers subscribed in order; ack after work."""
    if workers < 1:
        raise ValueError("need at least one worker")
    ready = deque(range(len(durations)))
    active = deque(range(workers))  # consumers with credit, head first
    parked: set[int] = set()
    unacked = [0] * workers
    held: list[deque[int]] = [deque() for _ in range(workers)]
    assignments: list[list[int]] = [[] for _ in range(workers)]
    busy_until: list[float | None] = [None] * workers
    current: list[int | None] = [None] * workers
    finish = [0.0] * workers

    def has_credit(worker: int) -> bool:
        return prefetch == 0 or unacked[worker] < prefetch

    def dispatch() -> None:
        while ready and active:
            worker = active.popleft()
            message = ready.popleft()
            unacked[worker] += 1
            held[worker].append(message)
            assignments[worker].append(message)
            if has_credit(worker):
                active.append(worker)
            else:
                parked.add(worker)

    def start_next(worker: int, now: float) -> None:
        if current[worker] is None and held[worker]:
            message = held[worker].popleft()
            current[worker] = message
            busy_until[worker] = now + durations[message]

    dispatch()
    for worker in range(workers):
        start_next(worker, 0.0)
    while True:
        running = [(t, w) for w, t in enumerate(busy_until) if t is not None]
        if not running:
            break
        now, worker = min(running)
        busy_until[worker] = None
        current[worker] = None
        finish[worker] = now
        unacked[worker] -= 1
        if worker in parked and has_credit(worker):
            parked.discard(worker)
            active.append(worker)
        dispatch()
        for other in range(workers):
            start_next(other, now)
    return DispatchPrediction(
        assignments=tuple(tuple(a) for a in assignments), finish=tuple(finish)
    )
