"""The dashboard under a flood: key-press-to-screen latency, throughput against the engine alone,
memory growth, and start to first frame.

    python benchmarks/ui_responsiveness.py [--messages N] [--workers N] [--rounds N]

In one run, on one embedded broker (a child process):
  * the engine alone (no subscriber, no UI) takes --messages zero-work tasks through --workers
    workers: msg/s from the publish call to the last task done;
  * the app, headless at 120x40, takes the same: msg/s until the *dashboard's model* has seen
    every task done. Each app run sits between two engine-alone runs, and its ratio is taken
    against their mean (the shared machine's load drifts); the median of those is the result.
    In a second app run a key (select the next worker), pressed ten times a second, is timed
    from the key event to the next screen update that shows it (Textual's `_display`, which in
    a terminal writes the frame); p50/p99 of those;
  * the process RSS before the app's flood and after it;
  * start to first frame: the installed `tui-queue` in a pseudo-terminal, from spawn to the first
    frame written (the task prompt on screen), median of three.
Targets (issue 5): p99 < 50 ms, app/engine >= 0.9, RSS growth < 50 MB, first frame < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import gc
import os
import pty
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from textual import events  # noqa: E402

from tui_queue.engine import Engine, EngineConfig, EventWaiter, QueueSpec  # noqa: E402
from tui_queue.engine.broker_process import BrokerProcess  # noqa: E402
from tui_queue.ui import LabOptions, QueueLabApp, create_app  # noqa: E402

BODY = "zero work"  # no dots: no work
KEY_INTERVAL = 0.1  # ten keys a second: a fast typist


def engine_alone(broker: BrokerProcess, messages: int, workers: int) -> float:
    """msg/s through the engine with nobody listening to its events."""
    queue = f"bench-engine-{uuid.uuid4().hex[:8]}"
    engine = Engine(
        EngineConfig(url=broker.url, management_url=broker.management_url, queue=QueueSpec(queue))
    )
    engine.start()
    try:
        for _ in range(workers):
            engine.add_worker()
        with EventWaiter(engine.bus, keep=lambda e: False) as waiter:
            waiter.wait_for(lambda: all_idle(engine), 20)
        # The waiter is closed: from here the engine has no subscriber, as without a UI.
        started = time.perf_counter()
        engine.publish_copies(BODY, messages)
        deadline = started + 300
        done = threading_wait(lambda: engine.totals().done >= messages, deadline)
        elapsed = time.perf_counter() - started
        assert done, "the engine did not finish"
        return messages / elapsed
    finally:
        engine.stop()
        delete_queue(broker, queue)


def all_idle(engine: Engine) -> bool:
    return all(snapshot.state.value == "idle" for snapshot in engine.workers())


def threading_wait(condition: Any, deadline: float) -> bool:
    """Wait on the ledger from this thread: woken by the engine's own done events would need a
    subscriber (which the 'engine alone' run must not have), so sample every 5 ms."""
    while not condition():
        if time.perf_counter() > deadline:
            return False
        time.sleep(0.005)
    return True


def delete_queue(broker: BrokerProcess, queue: str) -> None:
    from tui_queue.engine.connect import connect

    conn = connect(broker.url)
    conn.channel().queue_delete(queue)
    conn.close()


class ScreenClock:
    """Times key presses until the screen update that shows their effect."""

    def __init__(self, app: QueueLabApp) -> None:
        self.app = app
        self.latencies: list[float] = []
        self.updates = 0
        self._pending: tuple[float, str] | None = None
        self.seen = asyncio.Event()  # set when the pending key's frame is out
        self._display = app._display
        app._display = self._on_display  # type: ignore[method-assign]

    def _on_display(self, screen: Any, renderable: Any) -> None:
        self._display(screen, renderable)
        if renderable is None:
            return
        self.updates += 1
        pending = self._pending
        if pending is not None and self.app.selected == pending[1]:
            self.latencies.append(time.perf_counter() - pending[0])
            self._pending = None
            self.seen.set()

    @property
    def waiting(self) -> bool:
        return self._pending is not None

    def press_next_worker(self) -> None:
        names = list(self.app.model.workers)
        index = names.index(self.app.selected) if self.app.selected in names else 0
        expected = names[(index + 1) % len(names)]
        self.seen.clear()
        self._pending = (time.perf_counter(), expected)
        # What the terminal driver does with a key: an event posted to the app.
        self.app.post_message(events.Key("right", None))


async def app_run(
    broker: BrokerProcess, messages: int, workers: int, press_keys: bool
) -> tuple[float, list[float], int, int, int, float]:
    """(msg/s as the dashboard saw them, key latencies, RSS before, RSS after, UI events,
    share of the wall time the UI thread spent on the CPU)."""
    queue = f"bench-app-{uuid.uuid4().hex[:8]}"
    options = LabOptions(
        url=broker.url,
        management_url=broker.management_url,
        workers=workers,
        queue=queue,
        seconds_per_dot=0.0,
    )
    app = create_app(options)
    process = psutil.Process()
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await app.wait_ready()
            await app.wait_until(
                lambda: (
                    len(app.model.workers) == workers
                    and all(v.state.value == "idle" for v in app.model.workers.values())
                ),
                timeout=20,
            )
            await pilot.press("escape")  # leave the task field: arrows select workers
            clock = ScreenClock(app)
            gc.collect()
            rss_before = process.memory_info().rss
            engine = app.session.engine
            ui_cpu_before = time.thread_time()  # this thread runs the app's event loop
            started = time.perf_counter()
            engine.publish_copies(BODY, messages)

            def all_seen() -> bool:
                return sum(v.done.total for v in app.model.workers.values()) >= messages

            if press_keys:
                while not all_seen():
                    if time.perf_counter() - started > 300:
                        raise TimeoutError("the app did not finish")
                    clock.press_next_worker()
                    await asyncio.sleep(KEY_INTERVAL)  # the key rate, not a wait
                    if clock.waiting:  # no polling: that would compete with the key's frame
                        await asyncio.wait_for(clock.seen.wait(), 30)
            else:
                # Woken at each refresh tick (the model's counts move then): no polling loop on
                # the UI thread, at the price of ending up to a tick late (counted against us).
                await app.wait_until(all_seen, timeout=300, drawn=False)
            elapsed = time.perf_counter() - started
            ui_share = (time.thread_time() - ui_cpu_before) / elapsed
            # The last key's frame before the app closes (a key then would find no screen).
            if clock.waiting:
                await asyncio.wait_for(clock.seen.wait(), 30)
            gc.collect()
            rss_after = process.memory_info().rss
            taken = app.bridge.received
    finally:
        delete_queue(broker, queue)
    return messages / elapsed, clock.latencies, rss_before, rss_after, taken, ui_share


def first_frame_seconds(runs: int = 3) -> list[float]:
    """Spawn the installed CLI in a pseudo-terminal; time until the first frame is written."""
    executable = shutil.which("tui-queue")
    if executable is None:
        return []
    times = []
    for _ in range(runs):
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        data_dir = tempfile.mkdtemp(prefix="tq-bench-")
        env = {**os.environ, "TERM": "xterm-256color"}
        env.pop("COLUMNS", None)
        env.pop("LINES", None)
        started = time.perf_counter()
        child = subprocess.Popen(
            [executable, "--data-dir", data_dir],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env=env,
            start_new_session=True,
        )
        os.close(follower)
        seen = b""
        frame_at = None
        deadline = started + 20
        while frame_at is None and time.perf_counter() < deadline:
            ready, _, _ = select.select([leader], [], [], deadline - time.perf_counter())
            if not ready:
                break
            try:
                seen += os.read(leader, 65536)
            except OSError:
                break
            if "task ›".encode() in seen:
                frame_at = time.perf_counter()
        os.write(leader, b"\x11")  # ctrl+q
        drain_until_exit(leader, child)
        os.close(leader)
        shutil.rmtree(data_dir, ignore_errors=True)
        if frame_at is not None:
            times.append(frame_at - started)
    return times


def drain_until_exit(leader: int, child: subprocess.Popen[bytes]) -> None:
    """Read the terminal (a full pty would block the app's last writes) until the app exits."""
    while child.poll() is None:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                os.read(leader, 65536)
            except OSError:
                break
    child.wait(timeout=20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--rounds", type=int, default=6, help="app runs, each between two engine runs"
    )
    args = parser.parse_args()

    broker = BrokerProcess()
    broker.start()
    try:
        engine_rates, app_rates, latencies, ratios, ui_shares = [], [], [], [], []
        growth: list[int] = []
        taken = 0
        # Every app run sits between two engine-alone runs and is compared with their mean:
        # the machine's load drifts (it is shared), and a bracket cancels the drift.
        engine_rates.append(engine_alone(broker, args.messages, args.workers))
        for _ in range(args.rounds):
            rate, _keys, before, after, taken, share = asyncio.run(
                app_run(broker, args.messages, args.workers, press_keys=False)
            )
            app_rates.append(rate)
            ui_shares.append(share)
            growth.append(after - before)
            _rate, keys, before, after, _taken, _share = asyncio.run(
                app_run(broker, args.messages, args.workers, press_keys=True)
            )
            latencies.extend(keys)
            growth.append(after - before)
            engine_rates.append(engine_alone(broker, args.messages, args.workers))
            bracket = statistics.mean(engine_rates[-2:])
            ratios.append(rate / bracket)
    finally:
        broker.stop()
    frames = first_frame_seconds()

    engine_best, app_best = max(engine_rates), max(app_rates)
    # Per bracket (median), not best against best: the load is most alike within a bracket.
    ratio = statistics.median(ratios)
    ui_share = statistics.median(ui_shares)
    p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
    p99 = percentile(latencies, 0.99) * 1000 if latencies else float("nan")
    rss_mb = max(growth) / 1e6
    frame = statistics.median(frames) if frames else float("nan")

    table = Table(
        title=f"dashboard under {args.messages:,} zero-work tasks, {args.workers} workers"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_column("", justify="center")
    rows = [
        ("key press to screen, p50", f"{p50:.1f} ms", "", True),
        ("key press to screen, p99", f"{p99:.1f} ms", "< 50 ms", p99 < 50),
        ("key presses timed", f"{len(latencies)}", "", True),
        ("engine alone (best of rounds)", f"{engine_best:,.0f} msg/s", "", True),
        ("through the app (best of rounds)", f"{app_best:,.0f} msg/s", "", True),
        ("app / engine (median of brackets)", f"{ratio:.2f}", ">= 0.90", ratio >= 0.9),
        ("UI thread on the CPU during the flood", f"{ui_share:.0%}", "", True),
        ("engine events taken by the UI", f"{taken:,}", "", True),
        ("RSS growth during the flood", f"{rss_mb:.1f} MB", "< 50 MB", rss_mb < 50),
        ("start to first frame (median of 3)", f"{frame:.2f} s", "< 1 s", frame < 1.0),
    ]
    for measure, value, target, ok in rows:
        table.add_row(
            measure, value, target, ("[green]ok[/]" if ok else "[red]miss[/]") if target else ""
        )
    Console().print(table)
    print(
        "rounds: engine "
        + ", ".join(f"{r:,.0f}" for r in engine_rates)
        + " msg/s; app "
        + ", ".join(f"{r:,.0f}" for r in app_rates)
        + " msg/s; ratios "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + "; first frames "
        + ", ".join(f"{f:.2f}" for f in frames)
        + " s"
    )
    return 0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))
    return ordered[index]


if __name__ == "__main__":
    sys.exit(main())
