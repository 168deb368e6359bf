"""The installed `tui-queue` in a real terminal (tmux): type a task, read it back from a worker
panel, quit; then no process of it is left. And a broker that refuses: one line, no traceback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tui_queue.engine.broker_process import BrokerProcess

from .tmux import TmuxPane

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None or shutil.which("tui-queue") is None,
    reason="needs tmux and the installed tui-queue",
)


@pytest.fixture
def pane_factory() -> Iterator[list[TmuxPane]]:
    panes: list[TmuxPane] = []
    yield panes
    for pane in panes:
        pane.close()


def broker_children(data_dir: str) -> list[psutil.Process]:
    """Embedded brokers started with this data directory (ours, and only ours)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "tui_queue.engine.orphan_guard" in cmdline and data_dir in cmdline:
            found.append(process)
    return found


def test_type_a_task_read_it_back_and_quit_cleanly(
    pane_factory: list[TmuxPane], tmp_path: Path
) -> None:
    data_dir = str(tmp_path / "data")
    pane = TmuxPane(f"tui-queue --seconds-per-dot 0.05 --data-dir {data_dir}")
    pane_factory.append(pane)
    pane.wait_for(lambda s: "consumers 2" in s and s.count(" idle ") == 2, "two idle workers")
    brokers = broker_children(data_dir)
    assert len(brokers) == 1
    pane.type("Hello from tmux...")
    pane.press("Enter")
    screen = pane.wait_for(
        lambda s: "✓ #1 Hello from tmux..." in s and "published 1 = done 1" in s,
        "the task done by a worker",
    )
    assert "Received 1" in screen and "Done 1" in screen
    pane.press("Escape")
    # Escape then q at once would read as alt+q: wait until the keys show in the footer.
    pane.wait_for(lambda s: "k Kill" in s, "the footer to show the keys")
    pane.press("q")
    screen = pane.wait_for(lambda s: "EXIT=" in s, "the app to exit")
    assert "EXIT=0" in screen
    assert "Traceback" not in screen
    gone, alive = psutil.wait_procs(brokers, timeout=10)
    assert not alive, "the broker child outlived the app"
    assert not broker_children(data_dir)


TUTORIAL_TASKS = (
    "First message.",
    "Second message..",
    "Third message...",
    "Fourth message....",
    "Fifth message.....",
)


def test_a_burst_of_typed_tasks_stays_five_tasks(
    pane_factory: list[TmuxPane], tmp_path: Path
) -> None:
    """The five tutorial tasks typed faster than the app reads them (one burst of keys, as a
    script or a paste sends them) arrive as five tasks, dealt out round-robin."""
    data_dir = str(tmp_path / "data")
    pane = TmuxPane(f"tui-queue --seconds-per-dot 0.02 --data-dir {data_dir}")
    pane_factory.append(pane)
    pane.wait_for(lambda s: "consumers 2" in s and s.count(" idle ") == 2, "two idle workers")
    for task in TUTORIAL_TASKS:
        pane.type(task)
        pane.press("Enter")
    screen = pane.wait_for(lambda s: "published 5 = done 5" in s, "five tasks done")
    for number, task in enumerate(TUTORIAL_TASKS, start=1):
        assert f"#{number} {task}" in screen, f"task {number} is not {task!r}:\n{screen}"
    pane.press("Escape")
    pane.wait_for(lambda s: "k Kill" in s, "the footer to show the keys")
    pane.press("q")
    assert "EXIT=0" in pane.wait_for(lambda s: "EXIT=" in s, "the app to exit")


def one_panel_marked(screen: str, selected: str) -> bool:
    """Exactly one panel drawn as selected, and it is `selected`: its title on a heavy top
    border; the others' round titles are back."""
    return (
        f"┏━ ▶ {selected} " in screen
        and screen.count("▶ w") == 1
        and screen.count("┏") == 1
        and screen.count("┓") == 1
        and all(f"╭─ {other} " in screen for other in {"w1", "w2", "w3"} - {selected})
    )


def test_moving_the_selection_leaves_one_panel_marked(
    pane_factory: list[TmuxPane], tmp_path: Path
) -> None:
    """The selection repaints only the top border row of the two panels involved, the old one
    a frame after the new; what the terminal shows (not a fresh render of the screen) must
    still mark exactly one."""
    data_dir = str(tmp_path / "data")
    pane = TmuxPane(f"tui-queue --workers 3 --data-dir {data_dir}")
    pane_factory.append(pane)
    pane.wait_for(lambda s: "consumers 3" in s and s.count(" idle ") == 3, "three idle workers")
    pane.press("Escape")
    pane.wait_for(lambda s: "k Kill" in s, "the footer to show the keys")
    for key, selected in (("Right", "w2"), ("Right", "w3"), ("Left", "w2"), ("Left", "w1")):
        pane.press(key)
        # Waits for the frame, then asks it all of it: a half-drawn frame is not a failure, a
        # stale row that never gets repainted is.
        pane.wait_for(lambda s, w=selected: one_panel_marked(s, w), f"only {selected} marked")
    pane.press("q")
    assert "EXIT=0" in pane.wait_for(lambda s: "EXIT=" in s, "the app to exit")


def test_unreachable_broker_gives_one_line_and_a_non_zero_exit(
    pane_factory: list[TmuxPane],
) -> None:
    pane = TmuxPane("tui-queue --url amqp://guest:guest@127.0.0.1:1/")
    pane_factory.append(pane)
    screen = pane.wait_for(lambda s: "EXIT=" in s, "the app to give up")
    assert "EXIT=2" in screen
    assert (
        "tui-queue: cannot reach the broker at amqp://guest@127.0.0.1:1/: connection refused"
        in screen
    )
    assert "Traceback" not in screen


def test_refused_credentials_give_one_line_and_a_non_zero_exit(
    pane_factory: list[TmuxPane],
) -> None:
    broker = BrokerProcess()
    broker.start()
    try:
        pane = TmuxPane(f"tui-queue --url amqp://guest:wrong@127.0.0.1:{broker.port}/")
        pane_factory.append(pane)
        screen = pane.wait_for(lambda s: "EXIT=" in s, "the app to give up")
    finally:
        broker.stop()
    assert "EXIT=2" in screen
    assert "refused the login of user 'guest'" in screen
    assert "Traceback" not in screen
