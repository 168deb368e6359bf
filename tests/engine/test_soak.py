"""Kill and revive random workers while thousands of zero-work tasks flow: the books must close."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import pytest

from tui_queue.engine import KillMode, WorkerSettings, WorkerState

from .conftest import EngineHarness

TASKS = 8000
ROUNDS = 12


@pytest.mark.slow
def test_soak_kill_and_revive_under_manual_ack(harness: Callable[..., EngineHarness]) -> None:
    rng = random.Random(int(os.environ.get("TQ_SOAK_SEED", "1234")))
    h = harness(seconds_per_dot=0.0)
    engine = h.engine
    names = [h.add(WorkerSettings(prefetch=rng.choice([1, 5, 50, 0]))) for _ in range(4)]
    ticket = engine.publish([f"task {n}" for n in range(TASKS)])
    dead: list[str] = []
    kills = 0
    for round_number in range(1, ROUNDS + 1):
        # Chaos paced by progress, not by the clock: act each time another slice is done.
        target = TASKS * round_number // (ROUNDS + 2)
        h.wait(lambda t=target: engine.totals().completions >= t, f"{target} completions", 60)
        live = [name for name in names if name not in dead]
        if len(live) > 1:
            victim = rng.choice(live)
            engine.kill(victim, rng.choice([KillMode.CRASH, KillMode.CLEAN, KillMode.CANCEL]))
            dead.append(victim)
            kills += 1
        if dead and rng.random() < 0.7:
            engine.revive(dead.pop(0))
        if round_number % 4 == 0:
            # a live prefetch change in the middle of the storm
            engine.set_prefetch(rng.choice([0, 1, 10]), rng.choice(names))
    for name in dead:
        engine.revive(name)
    ticket.wait(60)
    h.wait(lambda: engine.totals().done == TASKS, "every task done at least once", 120)
    for name in names:
        h.wait_state(name, WorkerState.IDLE)
    h.wait(lambda: engine.totals().unacked == 0, "no unacked left")
    totals = engine.totals()
    ready, _consumers = engine.passive_declare()
    check = engine.ledger.check(broker_ready=ready, broker_unacked=engine.ledger.unacked_count())
    assert check.holds, check
    assert (totals.published, totals.done, totals.lost) == (TASKS, TASKS, 0), totals
    assert ready == 0
    # at-least-once made visible: every extra finish is a counted duplicate
    assert totals.completions == totals.done + totals.duplicates
    assert kills >= ROUNDS // 2  # a kill needs two live workers; revives are random
    assert sum(c.received for c in engine.ledger.all_worker_counts()) == totals.delivered
    # bounded books: nothing per-message is kept for finished messages but their byte
    assert len(engine.ledger._open) == 0
