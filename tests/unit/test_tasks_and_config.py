"""Tutorial body rules, message ids and settings validation."""

from __future__ import annotations

import pika.exceptions
import pytest

from tui_queue.engine import scenarios
from tui_queue.engine.config import (
    AckTiming,
    EngineConfig,
    QueueSpec,
    QueueType,
    SettingsError,
    WorkerSettings,
    describe_mode,
    validate_prefetch,
    validate_seconds_per_dot,
)
from tui_queue.engine.publisher import TaskTooLarge, encode_bodies
from tui_queue.engine.scenarios import ScenarioError, ScenarioOptions, ScenarioReport, run_scenario
from tui_queue.engine.tasks import (
    HELLO,
    TUTORIAL_TASKS,
    MessageIds,
    dots,
    heavy_light_bodies,
    preview,
    task_body,
    work_seconds,
)


def test_new_task_body_rule() -> None:
    assert task_body([]) == HELLO == "Hello World!"
    assert task_body(["First", "message."]) == "First message."


def test_dots_are_seconds() -> None:
    assert [dots(t) for t in TUTORIAL_TASKS] == [1, 2, 3, 4, 5]
    assert dots(b"a.b.c") == 2
    assert work_seconds("Hello!...", 1.0) == 3.0
    assert work_seconds("Hello!...", 0.2) == pytest.approx(0.6)


def test_heavy_light_pattern_odd_heavy_even_light() -> None:
    bodies = heavy_light_bodies(4, heavy_dots=3, light_dots=1)
    assert bodies == ["Heavy task 1...", "Light task 2.", "Heavy task 3...", "Light task 4."]


def test_preview_is_cut_and_lenient() -> None:
    assert preview(b"abc") == "abc"
    assert preview(b"\xff") == "\ufffd"
    long = preview(b"x" * 1000, limit=10)
    assert len(long) == 10 and long.endswith("…")


def test_message_ids_round_trip() -> None:
    ids = MessageIds.fresh()
    assert ids.parse(ids.make(42)) == 42
    assert MessageIds.fresh().parse(ids.make(1)) is None


def test_oversized_bodies_are_refused() -> None:
    assert encode_bodies(["ab", b"cd"], limit=2) == [b"ab", b"cd"]
    with pytest.raises(TaskTooLarge, match="3 bytes is over the broker's limit of 2"):
        encode_bodies(["abc"], limit=2)
    assert issubclass(TaskTooLarge, SettingsError)


@pytest.mark.parametrize("bad", [-1, 65_536, 1.5, True, "3"])
def test_bad_prefetch_is_refused(bad: object) -> None:
    with pytest.raises(SettingsError):
        validate_prefetch(bad)  # type: ignore[arg-type]
    with pytest.raises(SettingsError):
        WorkerSettings(prefetch=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-0.1, 61, "1", None, False])
def test_bad_speed_is_refused(bad: object) -> None:
    with pytest.raises(SettingsError):
        validate_seconds_per_dot(bad)  # type: ignore[arg-type]


def test_engine_config_validates() -> None:
    with pytest.raises(SettingsError):
        EngineConfig(url="amqp://x", seconds_per_dot=-1)
    with pytest.raises(SettingsError):
        EngineConfig(url="amqp://x", stats_interval=0)
    with pytest.raises(SettingsError):
        QueueSpec(name="")
    with pytest.raises(SettingsError, match="quorum queue must be durable"):
        QueueSpec(durable=False, queue_type=QueueType.QUORUM)


def test_queue_arguments_match_the_tutorial() -> None:
    assert QueueSpec().arguments() is None  # worker.py declares with no arguments
    assert QueueSpec(queue_type=QueueType.QUORUM).arguments() == {"x-queue-type": "quorum"}


def test_mode_summary() -> None:
    assert describe_mode(WorkerSettings()) == (
        "round-robin: prefetch 0 (unlimited), manual ack after work"
    )
    assert (
        describe_mode(WorkerSettings(prefetch=1))
        == "fair dispatch: prefetch 1, manual ack after work"
    )
    assert describe_mode(WorkerSettings(prefetch=5, ack_timing=AckTiming.BEFORE_WORK)) == (
        "prefetch 5, manual ack before work"
    )
    assert describe_mode(WorkerSettings(prefetch=1, forget_ack=True)) == (
        "fair dispatch: prefetch 1, ack forgotten (never sent)"
    )
    assert describe_mode(WorkerSettings(auto_ack=True)).startswith("auto-ack")
    changed = WorkerSettings().with_changes(prefetch=3)
    assert changed.prefetch == 3


@pytest.mark.parametrize(
    "bad",
    [{"workers": 0}, {"workers": 33}, {"prefetch": -1}, {"seconds_per_dot": -1}, {"timeout": 0}],
)
def test_scenario_options_refuse_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(SettingsError):
        ScenarioOptions(url="amqp://x", **bad)  # type: ignore[arg-type]


def test_a_scenario_that_times_out_or_loses_its_broker_is_a_scenario_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def times_out(_options: ScenarioOptions) -> ScenarioReport:
        raise TimeoutError("no WorkStarted event within 60 s")

    def broker_fails(_options: ScenarioOptions) -> ScenarioReport:
        raise pika.exceptions.ChannelClosedByBroker(404, "NOT_FOUND - no queue\n'q'")

    options = ScenarioOptions(url="amqp://x")
    monkeypatch.setitem(scenarios._RUNNERS, "kill", times_out)
    with pytest.raises(ScenarioError, match="kill: timed out: no WorkStarted event within 60 s"):
        run_scenario("kill", options)
    monkeypatch.setitem(scenarios._RUNNERS, "kill", broker_fails)
    with pytest.raises(ScenarioError, match="kill: the broker failed: .*NOT_FOUND") as caught:
        run_scenario("kill", options)
    assert "\n" not in str(caught.value)
