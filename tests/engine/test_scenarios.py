"""Every scenario's outcome, asserted on both brokers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_queue.engine import KillMode
from tui_queue.engine.scenarios import ScenarioOptions, ScenarioReport, run_scenario

from .conftest import BrokerUnderTest

STORE = Path(__file__).resolve().parents[2] / "tui_queue" / "broker" / "store.py"


def run(broker: BrokerUnderTest, name: str, **options: object) -> ScenarioReport:
    settings: dict[str, object] = {"seconds_per_dot": 0.05, "timeout": 30.0, **options}
    report = run_scenario(
        name,
        ScenarioOptions(
            url=broker.url,
            management_url=broker.management_url,
            control=broker.control,
            **settings,  # type: ignore[arg-type]
        ),
    )
    failed = [check for check in report.checks if not check.ok]
    assert not failed, f"{name} on {broker.kind}: {failed}"
    return report


def rows(report: ScenarioReport) -> dict[str, tuple[int, ...]]:
    return {row.worker: row.first_deliveries for row in report.workers}


def test_round_robin_gives_1_3_5_and_2_4(engine_broker: BrokerUnderTest) -> None:
    report = run(engine_broker, "round-robin")
    assert rows(report) == {"w1": (1, 3, 5), "w2": (2, 4)}
    assert (report.published, report.done, report.lost, report.duplicates) == (5, 5, 0, 0)


def test_round_robin_with_fair_dispatch_splits_the_tutorial_tasks_the_same(
    engine_broker: BrokerUnderTest,
) -> None:
    # 1,2,3,4,5 dots: with prefetch 1 the light worker is free first each time, as with 0.
    report = run(engine_broker, "round-robin", prefetch=1)
    assert rows(report) == {"w1": (1, 3, 5), "w2": (2, 4)}


def test_heavy_light_fair_dispatch_wins_by_the_predicted_margin(
    engine_broker: BrokerUnderTest,
) -> None:
    report = run(engine_broker, "heavy-light", seconds_per_dot=0.1)
    facts = report.facts
    # Prefetch 0: round-robin puts every heavy task on w1 (4 x 4 dots = 1.6 s).
    assert rows(report)["p0:w1"] == (1, 3, 5, 7)
    assert facts["makespan_prefetch_0"] >= 0.95 * facts["predicted_prefetch_0"]
    assert facts["makespan_prefetch_1"] <= facts["predicted_prefetch_1"] + 0.35
    assert facts["margin"] >= 0.5 * facts["predicted_margin"]


def test_kill_loses_nothing_under_manual_ack(engine_broker: BrokerUnderTest) -> None:
    report = run(engine_broker, "kill")
    assert report.lost == 0
    assert report.done == report.published == 6
    victim = next(row for row in report.workers if row.worker == "w1")
    assert victim.requeued >= 1 and victim.done < 6
    assert report.redelivered >= victim.requeued


@pytest.mark.parametrize("mode", [KillMode.CLEAN, KillMode.HANG, KillMode.CANCEL])
def test_kill_in_other_ways_loses_nothing_either(
    engine_broker: BrokerUnderTest, mode: KillMode
) -> None:
    report = run(engine_broker, "kill", kill_mode=mode)
    assert report.lost == 0 and report.done == 6 and report.duplicates == 0
    if mode is KillMode.CANCEL:
        assert report.redelivered == 0  # basic.cancel leaves its messages with the worker
    else:
        assert report.redelivered >= 1


def test_auto_ack_kill_loses_exactly_what_the_worker_held(engine_broker: BrokerUnderTest) -> None:
    report = run(engine_broker, "auto-ack-kill")
    held = report.facts["held_at_kill"]
    assert held == 3  # round-robin gave it tasks 1, 3, 5; it was busy on the first
    assert report.lost == held
    assert report.done + report.lost == report.published == 6
    assert report.redelivered == 0


def test_forgotten_ack_stalls_at_the_prefetch_and_redelivers_on_death(
    engine_broker: BrokerUnderTest,
) -> None:
    report = run(engine_broker, "forgotten-ack", prefetch=2)
    forgetful = next(row for row in report.workers if row.worker == "w1")
    assert forgetful.received == 2 and forgetful.requeued == 2
    assert report.duplicates == 2 and report.done == report.published == 8


def test_forgotten_ack_with_one_worker_recovers_after_revive(
    engine_broker: BrokerUnderTest,
) -> None:
    report = run(engine_broker, "forgotten-ack", workers=1, prefetch=3)
    assert report.done == report.published == 8
    assert report.duplicates == 3


@pytest.mark.slow
def test_durability_persistent_messages_survive_a_restart(
    engine_broker: BrokerUnderTest, request: pytest.FixtureRequest
) -> None:
    if engine_broker.kind == "embedded" and not STORE.exists():
        request.applymarker(pytest.mark.xfail(reason="embedded durable store: issue 3"))
    report = run(engine_broker, "durability")
    assert report.facts["survived"] == 5
    assert report.lost == 5  # the transient ones, counted by the ledger as the broker's loss
