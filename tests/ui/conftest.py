"""Helpers for driving the dashboard with Pilot against its own embedded broker.

Every app here runs as a person runs it (broker child process, engine threads), on a free port,
with `stable_screen` so snapshots hold nothing that depends on time or on the machine. Waiting is
on conditions (`app.wait_until` wakes on each refresh tick that changed something), never sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import psutil
import pytest
from textual import events
from textual.keys import _character_to_key
from textual.pilot import Pilot

from tests.support.processes import running
from tui_queue.engine import WorkerState
from tui_queue.ui import LabOptions, QueueLabApp, create_app
from tui_queue.ui.model import WorkerView
from tui_queue.ui.widgets.worker_panel import WorkerPanel

SIZE = (120, 40)


def lab_options(**overrides: object) -> LabOptions:
    settings: dict[str, object] = {
        "broker_port": 0,  # never 5672: a developer's RabbitMQ or tutorial may be there
        "seconds_per_dot": 0.05,
        "stable_screen": True,
        "heartbeat": 2,
    }
    settings.update(overrides)
    return LabOptions(**settings)  # type: ignore[arg-type]


def make_app(**overrides: object) -> QueueLabApp:
    return create_app(lab_options(**overrides))


def view(app: QueueLabApp, worker: str) -> WorkerView:
    return app.model.workers[worker]


def all_idle(app: QueueLabApp, count: int = 2) -> bool:
    workers = app.model.workers.values()
    return len(workers) == count and all(v.state is WorkerState.IDLE for v in workers)


def at_rest(app: QueueLabApp, published: int, consumers: int = 2) -> bool:
    """Everything published is settled, and the broker's numbers say so too."""
    totals, stats = app.model.totals, app.model.queue_stats
    return (
        totals is not None
        and stats is not None
        and totals.published == published
        and totals.done + totals.lost + totals.purged == published
        and stats.ready == 0
        and stats.unacked == 0
        and stats.consumers == consumers
        and all(v.current is None for v in app.model.workers.values())
    )


async def start(app: QueueLabApp, workers: int = 2) -> None:
    """The broker up, the workers idle and the broker counting them as consumers, and every
    worker's panel laid out on screen (a panel is mounted a moment before it has a place)."""
    await app.wait_ready()
    await app.wait_until(
        lambda: all_idle(app, workers) and consumers(app) == workers and panels_placed(app)
    )


def panels_placed(app: QueueLabApp) -> bool:
    panels = app.parts.grid.panels
    return len(panels) == len(app.model.workers) and all(p.region.area > 0 for p in panels)


def consumers(app: QueueLabApp) -> int | None:
    stats = app.model.queue_stats
    return stats.consumers if stats is not None else None


async def type_task(pilot: Pilot[None], body: str) -> None:
    """Type into the focused task field as a fast typist would, and press Enter.

    pilot.press waits for the process to look idle after every key, which engine threads
    rarely allow; so the characters go in as key events back to back, and only Enter waits."""
    for character in body:
        key = character if character.isalnum() else _character_to_key(character)
        pilot.app.post_message(events.Key(key, character))
    await pilot.press("enter")


async def type_tasks(pilot: Pilot[None], bodies: list[str]) -> None:
    for body in bodies:
        await type_task(pilot, body)


def screen_lines(app: QueueLabApp) -> list[str]:
    """The screen as text, one string per row (what a person reads)."""
    # Textual has no public "screen as text"; the compositor's strips are what it paints.
    return [strip.text for strip in app.screen._compositor.render_strips()]


def screen_text(app: QueueLabApp) -> str:
    return "\n".join(screen_lines(app))


def panel_text(app: QueueLabApp, worker: str) -> str:
    """The text inside one worker's panel on screen."""
    panel = app.query_one(f"#worker-{worker}", WorkerPanel)
    region = panel.region
    rows = screen_lines(app)[region.y : region.y + region.height]
    return "\n".join(row[region.x : region.x + region.width] for row in rows)


def has_line(text: str, *fragments: str) -> bool:
    """Some line of `text` holds every fragment, in this order (lists cut long bodies short)."""
    for line in text.splitlines():
        at = 0
        for fragment in fragments:
            at = line.find(fragment, at)
            if at < 0:
                break
            at += len(fragment)
        else:
            return True
    return False


TUTORIAL_TASKS = [
    "First message.",
    "Second message..",
    "Third message...",
    "Fourth message....",
    "Fifth message.....",
]


def _describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid} {' '.join(process.cmdline()[:6])}"
    except psutil.Error:
        return str(process.pid)


@pytest.fixture
def no_stray() -> Iterator[Callable[[QueueLabApp], None]]:
    """After the test, the threads and child processes its apps started must be gone.

    Compared with what ran before the test: other suites' session-wide brokers (and their
    output readers) legitimately outlive a test. Calling the fixture with an app is optional;
    it marks, in the test, which apps the check covers."""
    threads_before = set(threading.enumerate())
    # Direct children only: a RabbitMQ node started earlier spawns helpers of its own at will.
    children_before = {child.pid for child in psutil.Process().children()}

    def track(app: QueueLabApp) -> None:
        del app  # nothing to keep: what the app started is found by difference

    yield track
    strays = [
        _describe(child)
        for child in psutil.Process().children()
        if child.pid not in children_before and running(child)
    ]
    assert not strays, f"child processes left running: {strays}"
    leftovers = [
        thread.name
        for thread in threading.enumerate()
        if thread.name.startswith("tq-") and thread not in threads_before
    ]
    assert not leftovers, f"threads left running: {leftovers}"
