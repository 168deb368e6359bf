"""The flows of "The experience", driven by key and mouse against the embedded broker; each test
asserts what the panels and counters show."""

from __future__ import annotations

from tui_queue.engine import KillMode, WorkerState
from tui_queue.ui.widgets.publish_bar import PublishBar

from .conftest import (
    SIZE,
    TUTORIAL_TASKS,
    at_rest,
    consumers,
    has_line,
    make_app,
    panel_text,
    screen_text,
    start,
    type_task,
    type_tasks,
    view,
)


async def test_first_start_invites_the_first_task(no_stray) -> None:
    app = make_app()
    no_stray(app)
    async with app.run_test(size=SIZE):
        await start(app)
        assert app.first_frame_at is not None
        assert app.first_frame_at - app.started_at < 1.0
        assert isinstance(app.focused, type(app.query_one(PublishBar).input))
        text = screen_text(app)
        assert "embedded broker amqp://127.0.0.1" in text
        assert "queue task_queue · classic · durable" in text
        assert "consumers 2" in text
        assert "round-robin: prefetch 0 (unlimited), manual ack after work" in text
        assert "Type a task" in text
        for worker in ("w1", "w2"):
            assert "idle" in panel_text(app, worker)
            assert "prefetch 0 · ack after work" in panel_text(app, worker)


async def test_round_robin_splits_the_five_tutorial_messages(no_stray) -> None:
    app = make_app()
    no_stray(app)
    async with app.run_test(size=SIZE) as pilot:
        await start(app)
        await type_tasks(pilot, TUTORIAL_TASKS)
        await app.wait_until(lambda: at_rest(app, 5))
        assert view(app, "w1").received_seqs() == [1, 3, 5]
        assert view(app, "w2").received_seqs() == [2, 4]
        w1, w2 = panel_text(app, "w1"), panel_text(app, "w2")
        for line in (
            "Received 3",
            "Done 3",
            "#1 First message.",
            "#3 Third message...",
            "#5 Fifth message.....",
        ):
            assert line in w1
        for line in ("Received 2", "Done 2", "#2 Second message..", "#4 Fourth message...."):
            assert line in w2
        assert "First message" not in w2
        assert "published 5 = done 5 + ready 0 + unacked 0 + lost 0  ✓" in screen_text(app)


async def test_heavy_light_batch_keeps_one_worker_busy(no_stray) -> None:
    app = make_app()
    no_stray(app)
    async with app.run_test(size=SIZE) as pilot:
        await start(app)
        await pilot.press("escape", "b")
        await pilot.press("enter")  # the dialog's defaults: 10 tasks, heavy 5 dots, light 1
        w1, w2 = view(app, "w1"), view(app, "w2")
        await app.wait_until(lambda: w2.done.total == 5)
        # Prefetch 0: the broker dealt every odd (heavy) task to w1 up front; w2 sits idle.
        assert w1.done.total < 5
        assert all(entry.body.startswith("Heavy") for entry in w1.received)
        assert all(entry.body.startswith("Light") for entry in w2.received)
        await app.wait_until(lambda: at_rest(app, 10))
        assert w1.work_seconds > 4 * w2.work_seconds
        assert "Heavy task 9....." in panel_text(app, "w1")


async def test_prefetch_1_evens_out_the_work(no_stray) -> None:
    app = make_app(seconds_per_dot=0.1)
    no_stray(app)
    async with app.run_test(size=SIZE) as pilot:
        await start(app)
        await pilot.press("escape", "1")
        await app.wait_until(
            lambda: all(v.settings.prefetch == 1 for v in app.model.workers.values())
        )
        assert "all workers — fair dispatch: prefetch 1, manual ack after work" in screen_text(app)
        assert "prefetch 1 · ack after work" in panel_text(app, "w1")
        await pilot.press("b", "enter")
        await app.wait_until(lambda: at_rest(app, 10), timeout=20)
        w1, w2 = view(app, "w1"), view(app, "w2")
        # Fair dispatch: nobody gets a new task before acking the last, so both take heavy ones.
        assert any(entry.body.startswith("Heavy") for entry in w2.received)
        assert any(entry.body.startswith("Light") for entry in w1.received)
        assert abs(w1.work_seconds - w2.work_seconds) <= 0.6


async def test_killing_a_busy_worker_redelivers_its_message_to_the_other(no_stray) -> None:
    app = make_app(seconds_per_dot=0.1)
    no_stray(app)
    async with app.run_test(size=SIZE) as pilot:
        await start(app)
        # 40 dots: 4 s of work, ample for the keys of the kill to land while w1 works.
        await type_task(pilot, "Long task" + "." * 40)
        w1, w2 = view(app, "w1"), view(app, "w2")
        await app.wait_until(lambda: w1.state is WorkerState.WORKING)
        assert "▶ #1 Long task....." in panel_text(app, "w1")
        await pilot.press("escape", "k")
        assert "Kill w1: how should it die?" in screen_text(app)
        await pilot.press("c")
        await app.wait_until(lambda: at_rest(app, 1, consumers=1), timeout=25)
        assert w1.state is WorkerState.KILLED and w1.killed_how is KillMode.CRASH
        assert w2.done.total == 1 and w2.redelivered == 1
        w1_text, w2_text = panel_text(app, "w1"), panel_text(app, "w2")
        assert "killed (crash)" in w1_text and has_line(w1_text, "↩ #1 Long", "requeued")
        assert has_line(w2_text, "✓ #1 Long", "redelivered")
        assert "redelivered 1" in w2_text
        assert "lost 0" in screen_text(app)
        await pilot.press("v")  # revive: a fresh connection
        await app.wait_until(lambda: w1.state is WorkerState.IDLE)


async def test_auto_ack_kill_counts_the_loss(no_stray) -> None:
    app = make_app(seconds_per_dot=0.2)
    no_stray(app)
    async with app.run_test(size=SIZE) as pilot:
        await start(app)
        await pilot.press("escape", "u")
        await app.wait_until(lambda: all(v.settings.auto_ack for v in app.model.workers.values()))
        assert "auto-ack: messages count as done when sent" in screen_text(app)
        await pilot.press("t")
        # 10 s each: w1 must still hold both when the kill lands, however slow a loaded machine
        # makes the keys before it.
        await type_tasks(pilot, [f"Task {name}" + "." * 50 for name in "ABCD"])
        w1 = view(app, "w1")
        # w1 holds two tasks (one working, one prefetched): both already gone from the broker.
        # (Which two depends on the order the auto-ack change re-subscribed the consumers.)
        await app.wait_until(lambda: w1.received.total == 2 and w1.state is WorkerState.WORKING)
        await pilot.press("escape", "k", "c")
        await app.wait_until(
            lambda: (
                w1.state is WorkerState.KILLED
                and app.model.totals is not None
                and app.model.totals.lost == 2
                and consumers(app) == 1
            )
        )
        w1_text = panel_text(app, "w1")
        for entry in w1.received:
            assert has_line(w1_text, f"✗ #{entry.seq} Task", "lost")
        assert "lost 2" in w1_text
        assert "+ lost 2" in screen_text(app).splitlines()[2]  # the totals line


async def test_a_worker_reconnects_after_the_broker_is_killed(no_stray) -> None:
    app = make_app()
    no_stray(app)
    async with app.run_test(size=SIZE) as pilot:
        await start(app)
        first_pid = app.session.broker_pid
        await pilot.press("escape", "R")
        assert "Restart the broker" in screen_text(app)
        await pilot.press("k")
        await app.wait_until(
            lambda: all(
                WorkerState.RECONNECTING in v.states_seen for v in app.model.workers.values()
            )
        )
        await app.wait_until(lambda: all_back(app), timeout=20)
        assert app.session.broker_pid != first_pid
        # Durable queue, persistent task: it survives the SIGKILL and gets done.
        await pilot.press("t")
        await type_task(pilot, "After the restart.")
        await app.wait_until(lambda: at_rest(app, 1))


def all_back(app) -> bool:
    return all(v.state is WorkerState.IDLE for v in app.model.workers.values()) and (
        app.model.queue_stats is not None and app.model.queue_stats.consumers == 2
    )
