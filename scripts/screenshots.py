"""Regenerate the README's screenshots: SVGs of the dashboard in its key states.

    python scripts/screenshots.py [--out screenshots]

Each state is reached as a person would reach it (typed tasks, keys), on the app's own embedded
broker, headless at 120x36, and saved with Textual's SVG export. Look at them after a change.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402
from textual.keys import _character_to_key  # noqa: E402
from textual.pilot import Pilot  # noqa: E402

from tui_queue.engine import WorkerState  # noqa: E402
from tui_queue.engine.tasks import TUTORIAL_TASKS  # noqa: E402
from tui_queue.ui import LabOptions, QueueLabApp, create_app  # noqa: E402

SIZE = (120, 36)
Scene = Callable[[QueueLabApp, Pilot[None]], Awaitable[None]]


async def type_task(pilot: Pilot[None], body: str) -> None:
    for character in body:
        key = character if character.isalnum() else _character_to_key(character)
        pilot.app.post_message(events.Key(key, character))
    await pilot.press("enter")


def settled(app: QueueLabApp, published: int, consumers: int = 2) -> bool:
    totals, stats = app.model.totals, app.model.queue_stats
    return (
        totals is not None
        and stats is not None
        and totals.published == published
        and totals.done + totals.lost == published
        and stats.ready == 0
        and stats.unacked == 0
        and stats.consumers == consumers
    )


async def ready(app: QueueLabApp) -> None:
    await app.wait_ready()
    await app.wait_until(
        lambda: (
            len(app.model.workers) == 2
            and all(v.state is WorkerState.IDLE for v in app.model.workers.values())
            and app.model.queue_stats is not None
            and app.model.queue_stats.consumers == 2
        )
    )


async def first_start(app: QueueLabApp, pilot: Pilot[None]) -> None:
    await ready(app)


async def round_robin(app: QueueLabApp, pilot: Pilot[None]) -> None:
    await ready(app)
    for task in TUTORIAL_TASKS:
        await type_task(pilot, task)
    await app.wait_until(lambda: settled(app, 5), timeout=30)
    await pilot.press("escape", "l")  # with the event log


async def heavy_light(app: QueueLabApp, pilot: Pilot[None]) -> None:
    await ready(app)
    await pilot.press("escape", "b", "enter")
    # Prefetch 0: w2 has done its light tasks while w1 still works through the heavy ones.
    w2 = app.model.workers["w2"]
    await app.wait_until(lambda: w2.done.total == 5, timeout=30)


async def fair_dispatch(app: QueueLabApp, pilot: Pilot[None]) -> None:
    await ready(app)
    await pilot.press("escape", "1")
    await app.wait_until(lambda: all(v.settings.prefetch == 1 for v in app.model.workers.values()))
    await pilot.press("b", "enter")
    await app.wait_until(lambda: app.model.totals is not None and app.model.totals.done >= 6)


async def kill_redelivery(app: QueueLabApp, pilot: Pilot[None]) -> None:
    await ready(app)
    await type_task(pilot, "First message.")
    await type_task(pilot, "Long task" + "." * 12)
    await type_task(pilot, "Third message...")
    w2 = app.model.workers["w2"]
    await app.wait_until(lambda: w2.state is WorkerState.WORKING, timeout=30)
    await pilot.press("escape", "right", "k", "c")  # kill w2 while it works on #2
    w1 = app.model.workers["w1"]
    await app.wait_until(
        lambda: w1.current is not None and w1.current.entry.redelivered, timeout=30
    )


async def auto_ack_loss(app: QueueLabApp, pilot: Pilot[None]) -> None:
    await ready(app)
    for worker in ("w1", "w2"):
        app.set_auto_ack(True, worker)
        await app.wait_until(lambda worker=worker: app.model.workers[worker].settings.auto_ack)
    app.session.engine.publish([f"Task {name}......" for name in "ABCD"])
    w1 = app.model.workers["w1"]
    await app.wait_until(lambda: w1.received.total == 2)
    await pilot.press("escape", "k", "c")
    await app.wait_until(lambda: settled(app, 4, consumers=1), timeout=30)


SCENES: dict[str, tuple[Scene, float]] = {
    "first-start": (first_start, 1.0),
    "round-robin": (round_robin, 0.1),
    "heavy-light-prefetch-0": (heavy_light, 0.1),
    "fair-dispatch-prefetch-1": (fair_dispatch, 0.1),
    "kill-with-redelivery": (kill_redelivery, 0.2),
    "auto-ack-loss": (auto_ack_loss, 0.1),
}


async def shoot(name: str, scene: Scene, seconds_per_dot: float, out: Path) -> Path:
    # As a person runs it: the embedded broker on 5672 when free (else on a free port).
    app = create_app(LabOptions(seconds_per_dot=seconds_per_dot))
    async with app.run_test(size=SIZE) as pilot:
        await scene(app, pilot)
        await pilot.pause()
        path = out / f"{name}.svg"
        path.write_text(app.export_screenshot(title=f"tui-queue: {name}"))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("only", nargs="*", help=f"some of: {', '.join(SCENES)}")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (scene, seconds_per_dot) in SCENES.items():
        if args.only and name not in args.only:
            continue
        print(asyncio.run(shoot(name, scene, seconds_per_dot, args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
