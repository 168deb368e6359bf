"""Snapshots of the main states (pytest-textual-snapshot). Deterministic: a fixed terminal size,
`stable_screen` (no port, rates, backlog history or cursor blink), states taken at rest, and the
few steps whose timing would vary taken through the app's own methods rather than key timing.

Update with `pytest tests/ui/test_snapshots.py --snapshot-update`, then look at every SVG."""

from __future__ import annotations

from textual.pilot import Pilot

from tui_queue.engine import KillMode, WorkerState
from tui_queue.ui import QueueLabApp

from .conftest import SIZE, TUTORIAL_TASKS, at_rest, make_app, start, type_task, type_tasks, view


def app_of(pilot: Pilot[None]) -> QueueLabApp:
    app = pilot.app
    assert isinstance(app, QueueLabApp)
    return app


async def settled(app: QueueLabApp, published: int, consumers: int = 2) -> None:
    await app.wait_until(lambda: at_rest(app, published, consumers), timeout=20)


def test_first_start(snap_compare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await start(app_of(pilot))

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_round_robin_of_the_five_tutorial_messages(snap_compare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        app = app_of(pilot)
        await start(app)
        await type_tasks(pilot, TUTORIAL_TASKS)
        await settled(app, 5)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_kill_with_redelivery(snap_compare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        app = app_of(pilot)
        await start(app)
        await type_task(pilot, "Long task" + "." * 10)
        w1 = view(app, "w1")
        await app.wait_until(lambda: w1.state is WorkerState.WORKING)
        app.session.engine.kill("w1", KillMode.CRASH)
        await settled(app, 1, consumers=1)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_auto_ack_loss(snap_compare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        app = app_of(pilot)
        await start(app)
        # One worker at a time, so the consumers re-subscribe in a known order.
        for worker in ("w1", "w2"):
            app.set_auto_ack(True, worker)
            await app.wait_until(lambda worker=worker: view(app, worker).settings.auto_ack)
        # Published in one go, so w1 surely holds two when it dies (timing never decides).
        app.session.engine.publish([f"Task {name}....." for name in "ABCD"])
        w1 = view(app, "w1")
        await app.wait_until(lambda: w1.received.total == 2)
        app.session.engine.kill("w1", KillMode.CRASH)
        await settled(app, 4, consumers=1)

    assert snap_compare(make_app(seconds_per_dot=0.1), terminal_size=SIZE, run_before=run_before)


def test_eight_workers_on_80_by_24(snap_compare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        app = app_of(pilot)
        await start(app, workers=8)
        await pilot.press("escape")

    app = make_app(workers=8)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_help_screen(snap_compare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await start(app_of(pilot))
        await pilot.press("escape", "question_mark")

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_kill_dialog(snap_compare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await start(app_of(pilot))
        await pilot.press("escape", "k")

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_settings_dialog_refusing_a_bad_prefetch(snap_compare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await start(app_of(pilot))
        await pilot.press("escape", "s", "backspace", *"-1", "enter")

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_queue_type_confirmation(snap_compare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await start(app_of(pilot))
        await pilot.press("escape", "T")

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)
