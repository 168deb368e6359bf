"""Controls by key, mouse and command palette; refusals of bad input; reflow; clean exit."""

from __future__ import annotations

from tui_queue.engine import MessageReceived, QueueType, WorkDone, WorkerState
from tui_queue.ui.screens.form import FormScreen
from tui_queue.ui.screens.help import HelpScreen
from tui_queue.ui.screens.queue_type import QueueTypeScreen
from tui_queue.ui.widgets.publish_bar import PublishBar
from tui_queue.ui.widgets.worker_grid import WorkerGrid, grid_shape
from tui_queue.ui.widgets.worker_panel import WorkerPanel

from .conftest import (
    SIZE,
    at_rest,
    consumers,
    make_app,
    panel_text,
    screen_text,
    start,
    type_task,
    type_tasks,
    view,
)


async def test_invalid_prefetch_and_speed_are_refused_next_to_their_fields(no_stray) -> None:
    app = make_app()
    no_stray(app)
    async with app.run_test(size=SIZE) as pilot:
        await start(app)
        await pilot.press("escape", "s")
        dialog = app.screen
        assert isinstance(dialog, FormScreen)
        await pilot.press("backspace", *"-1", "tab")
        spd = dialog.query_one("#seconds-per-dot")
        spd.value = "fast"  # type: ignore[attr-defined]
        await pilot.click("#settings-apply")
        assert dialog.errors() == {
            "prefetch": "prefetch must be between 0 and 65,535",
            "seconds-per-dot": "seconds per dot must be a number",
        }
        text = screen_text(app)
        assert "prefetch must be between 0 and 65,535" in text
        assert "seconds per dot must be a number" in text
        assert app.screen is dialog  # still open: nothing was applied
        await pilot.press("escape")
        assert all(v.settings.prefetch == 0 for v in app.model.workers.values())
        assert app.session.engine.seconds_per_dot == 0.05
        # A valid prefetch N for the selected worker only.
        await pilot.press("s")
        await pilot.press("backspace", "3")
        await pilot.click("RadioButton")  # "w1 only"
        await pilot.click("#settings-apply")
        await app.wait_until(lambda: view(app, "w1").settings.prefetch == 3)
        assert view(app, "w2").settings.prefetch == 0
        assert "(settings differ between workers)" in screen_text(app)


async def test_an_oversized_task_is_refused_before_publishing(no_stray) -> None:
    app = make_app(max_task_bytes=32)
    no_stray(app)
    async with app.run_test(size=SIZE) as pilot:
        await start(app)
        await type_task(pilot, "x" * 40)
        bar = app.query_one(PublishBar)
        assert bar.error == "task of 40 bytes is over the broker's limit of 32 bytes"
        assert bar.input.value == "x" * 40  # kept, to be shortened
        assert "over the broker's limit of 32 bytes" in screen_text(app)
        assert app.session.engine.totals().published == 0
        await pilot.press("backspace")  # editing clears the refusal
        assert bar.error == ""


async def test_command_palette_sets_prefetch_and_mouse_selects_a_worker(no_stray) -> None:
    app = make_app()
    no_stray(app)
    async with app.run_test(size=SIZE) as pilot:
        await start(app)
        await pilot.click("#worker-w2")
        assert app.selected == "w2"
        panel = app.query_one("#worker-w2", WorkerPanel)
        await app.wait_until(lambda: panel.is_selected and "▶ w2" in screen_text(app))
        await pilot.press("ctrl+p")
        await pilot.press(*"Prefetch 1 for w2")
        await app.wait_until(lambda: "Prefetch 1 for w2" in screen_text(app))
        await pilot.press("enter")
        await app.wait_until(lambda: view(app, "w2").settings.prefetch == 1)
        assert view(app, "w1").settings.prefetch == 0
        assert "prefetch 1 · ack after work" in panel_text(app, "w2")


async def test_pause_resume_forget_ack_and_purge(no_stray) -> None:
    app = make_app(seconds_per_dot=0.01, workers=1)
    no_stray(app)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, workers=1)
        await pilot.press("escape", "p")
        await app.wait_until(lambda: view(app, "w1").state is WorkerState.PAUSED)
        assert "paused" in panel_text(app, "w1")
        await pilot.press("t")
        await type_tasks(pilot, ["one.", "two.", "three."])
        # Paused with prefetch 0: the broker still delivers; w1 holds all three, unstarted.
        await app.wait_until(lambda: view(app, "w1").received.total == 3)
        await pilot.press("escape", "p")
        await app.wait_until(lambda: at_rest(app, 3, consumers=1))
        # Forget ack: the work is done, the ack never sent; unacked climbs.
        await pilot.press("g")
        await app.wait_until(lambda: view(app, "w1").settings.forget_ack)
        assert "ack forgotten (never sent)" in screen_text(app)
        await pilot.press("t")
        await type_tasks(pilot, ["four.", "five."])
        await app.wait_until(
            lambda: app.model.queue_stats is not None and app.model.queue_stats.unacked == 2
        )
        assert view(app, "w1").done.total == 5 and view(app, "w1").acked == 3
        # Purge takes ready messages only. Cancel w1's consumer so that new tasks stay ready.
        await pilot.press("escape", "k", "x")
        await app.wait_until(lambda: view(app, "w1").state is WorkerState.CANCELLED)
        await app.wait_until(lambda: consumers(app) == 0)
        assert "consumer cancelled" in panel_text(app, "w1")
        await pilot.press("t")
        await type_tasks(pilot, ["six.", "seven."])
        await app.wait_until(
            lambda: app.model.queue_stats is not None and app.model.queue_stats.ready == 2
        )
        await pilot.press("escape", "x")
        await app.wait_until(lambda: app.model.totals is not None and app.model.totals.purged == 2)
        assert "+ purged 2" in screen_text(app).splitlines()[2]


async def test_add_remove_and_reflow_from_one_to_eight_workers(no_stray) -> None:
    app = make_app(workers=1)
    no_stray(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(app, workers=1)
        await pilot.press("escape", *"a" * 7)
        await app.wait_until(
            lambda: (
                len(app.model.workers) == 8
                and all(v.state is WorkerState.IDLE for v in app.model.workers.values())
                and len(app.query_one(WorkerGrid).panels) == 8
            ),
            timeout=20,
        )
        grid = app.query_one(WorkerGrid)
        assert grid.styles.grid_size_columns == 2  # 80 columns: two panels side by side
        await app.wait_until(lambda: consumers(app) == 8)
        await pilot.resize_terminal(160, 50)
        await app.wait_until(lambda: grid.styles.grid_size_columns == 4)
        app.selected = "w8"
        await pilot.press("minus")
        await app.wait_until(lambda: len(app.query(WorkerPanel)) == 7, timeout=15)
        assert "w8" not in app.model.workers


def test_grid_shape_fills_the_width_then_scrolls() -> None:
    assert grid_shape(1, 120, 30) == (1, 1, None)
    assert grid_shape(2, 120, 30) == (2, 1, None)
    assert grid_shape(8, 120, 33) == (3, 3, None)
    assert grid_shape(8, 78, 14) == (2, 4, 11)  # 80x24: fixed rows, scrolling


async def test_queue_type_switch_is_confirmed_with_the_406_explained(no_stray) -> None:
    app = make_app(queue="tq-ui-quorum-test")
    no_stray(app)
    async with app.run_test(size=SIZE) as pilot:
        await start(app)
        await pilot.press("escape", "T")
        assert isinstance(app.screen, QueueTypeScreen)
        text = screen_text(app)
        assert "406 PRECONDITION_FAILED" in text and "x-queue-type" in text
        await pilot.press("n")
        assert app.session.engine.queue_spec().queue_type is QueueType.CLASSIC
        await pilot.press("T", "y")
        await app.wait_until(
            lambda: (
                "tq-ui-quorum-test · quorum · durable" in screen_text(app) and consumers(app) == 2
            ),
            timeout=15,
        )
        await pilot.press("t")
        await type_task(pilot, "On a quorum queue.")
        await app.wait_until(lambda: at_rest(app, 1))


async def test_help_and_event_log(no_stray) -> None:
    app = make_app()
    no_stray(app)
    async with app.run_test(size=SIZE) as pilot:
        await start(app)
        await type_task(pilot, "Logged.")
        await app.wait_until(lambda: at_rest(app, 1))
        await pilot.press("escape", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for topic in (
            "Round-robin.",
            "Message acknowledgment.",
            "Forgotten acknowledgment.",
            "Durability.",
            "Fair dispatch.",
        ):
            assert topic in text
        await pilot.press("escape", "l")
        await app.wait_until(lambda: "Event log" in screen_text(app))
        text = screen_text(app)
        assert "w1 received #1 'Logged.'" in text
        assert "done #1" in text
        await pilot.press("l")
        await app.wait_until(lambda: "Event log" not in screen_text(app))


async def test_an_unreachable_broker_ends_the_app_with_one_line(no_stray) -> None:
    app = make_app(url="amqp://guest:guest@127.0.0.1:1/")
    no_stray(app)
    async with app.run_test(size=SIZE):
        # The app exits by itself once the connection is refused.
        await app.wait_until(lambda: app.startup_error is not None)
    assert app.return_code == 2
    assert app.startup_error == (
        "cannot reach the broker at amqp://guest@127.0.0.1:1/: connection refused"
    )


async def test_a_given_broker_url_is_used_and_never_restarted_from_here(no_stray) -> None:
    from tui_queue.engine.broker_process import BrokerProcess
    from tui_queue.ui.screens.broker_restart import BrokerRestartScreen

    broker = BrokerProcess()
    broker.start()
    try:
        app = make_app(url=broker.url, management_url=broker.management_url)
        no_stray(app)
        async with app.run_test(size=SIZE) as pilot:
            await start(app)
            assert app.broker_pid is None  # nothing of ours to own
            text = screen_text(app)
            assert "broker amqp://127.0.0.1  │  queue task_queue" in text
            assert "embedded" not in text.splitlines()[0]
            await type_task(pilot, "Over a given URL.")
            await app.wait_until(lambda: at_rest(app, 1))
            await pilot.press("escape", "R")
            assert not isinstance(app.screen, BrokerRestartScreen)
    finally:
        broker.stop()


async def test_a_flood_of_events_does_not_freeze_the_keys(no_stray) -> None:
    """5,000 zero-work tasks (25,000 engine events in a few seconds) while keys are pressed:
    each key is handled well within a second, and the counts stay exact. (The benchmark
    benchmarks/ui_responsiveness.py measures the latencies properly.)"""
    import time

    from textual import events

    app = make_app(workers=4, seconds_per_dot=0.0)
    no_stray(app)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, workers=4)
        await pilot.press("escape")
        app.session.engine.publish_copies("zero work", 5_000)
        bus = app.session.engine.bus
        await app.wait_until(lambda: app.model.activity() > 2_000, drawn=False)  # in the flood
        # The engine builds no per-message events while the dashboard floods...
        assert not bus.wants(MessageReceived) and not bus.wants(WorkDone)
        worst = 0.0
        for _ in range(10):
            before = app.selected
            pressed = time.perf_counter()
            app.post_message(events.Key("right", None))
            # drawn=False: in a flood the panels are drawn in turns; the selection is the point.
            await app.wait_until(lambda before=before: app.selected != before, drawn=False)
            worst = max(worst, time.perf_counter() - pressed)
        flood_over = app.model.totals is not None and app.model.totals.done == 5_000
        await app.wait_until(lambda: at_rest(app, 5_000, consumers=4), timeout=60)
        assert not flood_over, "the keys were not pressed during the flood"
        assert worst < 1.0, f"a key waited {worst:.2f} s"
        assert sum(v.done.total for v in app.model.workers.values()) == 5_000
        # ...the lists end with the flood's last tasks, and each event comes again after it.
        last_done = max(entry.seq or 0 for v in app.model.workers.values() for entry in v.done)
        assert last_done == 5_000
        await app.wait_until(lambda: bus.wants(MessageReceived) and bus.wants(WorkDone))
