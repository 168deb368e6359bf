"""The dashboard: a Textual app over the engine, built by `create_app` for the CLI and tests alike.

Threads never touch a widget. Engine events reach the UI thread through the EventBridge (a posted
message after a quiet spell, else the refresh tick takes them) and are folded into the LabModel;
the refresh tick also reads each worker's recent tasks and the ledger's counts into it (the
panels' lists and totals), then draws the model's changes. Blocking engine calls run on the
CommandRunner's thread. Quitting stops and joins all of it, and the broker child with it.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields

from rich.text import Text
from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.reactive import var
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer

from tui_queue.engine import (
    AckTiming,
    Engine,
    EngineInfo,
    KillMode,
    QueueSpec,
    QueueType,
    SettingsError,
    TaskTooLarge,
    UnknownWorker,
    WorkerSettings,
)
from tui_queue.ui.bridge import EngineEventsReady, EventBridge
from tui_queue.ui.commands import CommandOutcome, CommandRunner
from tui_queue.ui.messages import CommandFinished, SessionFailed, SessionReady
from tui_queue.ui.model import LabModel
from tui_queue.ui.options import MAX_WORKERS, LabOptions
from tui_queue.ui.palette import lab_commands
from tui_queue.ui.screens.broker_restart import BrokerRestartScreen
from tui_queue.ui.screens.help import HelpScreen
from tui_queue.ui.screens.kill import KillScreen
from tui_queue.ui.screens.publish_many import Batch, BatchScreen, Copies, CopiesScreen
from tui_queue.ui.screens.queue_type import QueueTypeScreen
from tui_queue.ui.screens.settings import SettingsChoice, SettingsScreen
from tui_queue.ui.session import LabSession
from tui_queue.ui.widgets.event_log import EventLog
from tui_queue.ui.widgets.header import BrokerHeader, header_facts
from tui_queue.ui.widgets.mode_line import mode_text
from tui_queue.ui.widgets.publish_bar import PublishBar
from tui_queue.ui.widgets.queue_bar import QueueBar
from tui_queue.ui.widgets.text_line import TextLine
from tui_queue.ui.widgets.totals import totals_text
from tui_queue.ui.widgets.worker_grid import WorkerGrid
from tui_queue.ui.widgets.worker_panel import WorkerPanel

REFRESH_HZ = 15
# More deliveries plus finishes than this between two ticks (about 400 tasks a second) is a
# flood: see QueueLabApp._draw.
FLOOD_TASKS_PER_TICK = 50
FLOOD_FRAME_INTERVAL = 0.5
# In a flood, no panel frame this soon after a key or a click: the input's own frame goes first.
INPUT_FIRST = 0.06


@dataclass(frozen=True, slots=True)
class MainParts:
    """The main screen's widgets, top to bottom (the footer aside)."""

    header: BrokerHeader
    queue_bar: QueueBar
    totals: TextLine
    mode: TextLine
    grid: WorkerGrid
    log: EventLog
    publish: PublishBar

    def in_order(self) -> list[Widget]:
        return [getattr(self, field.name) for field in fields(self)]


# Errors the engine raises for a request it refuses (the request changes nothing).
_REFUSALS = (SettingsError, UnknownWorker, RuntimeError)


class QueueLabApp(App[None]):
    """The work-queues lab: header, queue bar, totals, mode line, worker panels, event log,
    task field and footer; every command by key, mouse (footer, panels, dialogs) and palette."""

    CSS_PATH = "app.tcss"
    TITLE = "tui-queue"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("question_mark,f1", "help", "Help"),
        Binding("t", "focus_task", "Task", show=False),
        Binding("escape", "leave_task", "Leave field", show=False),
        Binding("c", "publish_copies", "Copies", show=False),
        Binding("b", "heavy_light", "Batch"),
        Binding("a", "add_worker", "Add"),
        Binding("k", "kill", "Kill"),
        Binding("v", "revive", "Revive"),
        Binding("p", "pause", "Pause"),
        Binding("minus", "remove_worker", "Remove", show=False),
        Binding("0", "prefetch_all(0)", "Prefetch 0"),
        Binding("1", "prefetch_all(1)", "Prefetch 1"),
        Binding("s", "settings", "Settings"),
        Binding("u", "toggle_auto_ack", "Auto-ack"),
        Binding("e", "toggle_ack_timing", "Ack before/after", show=False),
        Binding("g", "toggle_forget_ack", "Forget ack", show=False),
        Binding("x", "purge", "Purge", show=False),
        Binding("R", "restart_broker", "Restart broker", show=False),
        Binding("T", "queue_type", "Queue type", show=False),
        Binding("l", "toggle_log", "Log"),
        Binding("left", "select(-1)", "Previous worker", show=False),
        Binding("right", "select(1)", "Next worker", show=False),
        Binding("up", "select_row(-1)", "Worker above", show=False),
        Binding("down", "select_row(1)", "Worker below", show=False),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    # `var`, not `reactive`: an app-level reactive repaints the whole screen on change, and
    # moving the selection must cost two panel borders, not a full frame.
    selected: var[str | None] = var(None)
    """The worker that kill, revive, pause and per-worker settings act on."""

    show_log: var[bool] = var(False)
    """Whether the event log is on screen."""

    def __init__(self, options: LabOptions) -> None:
        super().__init__()
        self.options = options
        self.model = LabModel(options.list_length)
        self.bridge = EventBridge(self)
        self.session = LabSession(options, self.bridge)
        self.commands = CommandRunner(self._command_finished)
        self.info: EngineInfo | None = None
        self.startup_error: str | None = None
        self.broker_pid: int | None = None  # the embedded broker child, once started
        self.started_at = time.monotonic()
        self.first_frame_at: float | None = None
        self._session_up = asyncio.Event()
        self._changed = asyncio.Event()
        self._drawn_revision = -1
        self._drawn_layout = -1
        self._drawn_queue = -1
        self._drawn_log: tuple[int, bool] | None = None
        self._panel_turn = 0
        self._activity_at_tick = 0
        self._flooding = False
        self._flood_frame_at = 0.0
        self._input_at = 0.0
        # Set by the CLI: the broker child is then stopped after the terminal is restored (a
        # clean broker stop takes about a second; the screen need not hang meanwhile).
        self.defer_broker_stop = False
        self.set_reactive(QueueLabApp.show_log, options.show_log)
        # Held here, not queried: while a dialog is up, app.query() searches the dialog.
        self.parts = MainParts(
            header=BrokerHeader(id="header"),
            queue_bar=QueueBar(show_rates=not options.stable_screen, id="queue-bar"),
            totals=TextLine(id="totals"),
            mode=TextLine(id="mode"),
            grid=WorkerGrid(id="workers"),
            log=EventLog(id="log"),
            publish=PublishBar(cursor_blink=not options.stable_screen, id="publish"),
        )

    # --- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield from self.parts.in_order()
        yield Footer(compact=True)

    def on_mount(self) -> None:
        where = self.options.url or "the embedded broker"
        self.parts.header.show_starting(f"starting {where}…")
        self.parts.log.display = self.show_log
        self.parts.publish.input.focus()
        self.commands.start()
        self.session.start_in_background(
            on_ready=lambda info: self.post_message(SessionReady(info)),
            on_failed=lambda error: self.post_message(SessionFailed(error)),
        )
        self.set_interval(1 / REFRESH_HZ, self._draw, name="refresh tick")
        self.call_after_refresh(self._first_frame)

    def _first_frame(self) -> None:
        self.first_frame_at = time.monotonic()

    def on_unmount(self) -> None:
        try:
            self.commands.stop()
            self.session.stop(include_broker=not self.defer_broker_stop)
        finally:
            gc.unfreeze()  # what on_session_ready froze may go now (tests run many apps)

    def shutdown(self) -> None:
        """Stop and join every thread, and the broker child. Idempotent; any thread but the
        app's own threads."""
        self.commands.stop()
        self.session.stop()

    async def on_event(self, event: events.Event) -> None:
        # A key or a click, not a mouse passing over: that would hold flood frames off.
        if isinstance(event, (events.Key, events.MouseDown)) and not event.is_forwarded:
            self._input_at = time.monotonic()
        await super().on_event(event)

    # --- from threads -------------------------------------------------------------------------

    def on_session_ready(self, message: SessionReady) -> None:
        self.info = message.info
        self.broker_pid = self.session.broker_pid
        if self.model.queue_spec is None:
            self.model.queue_spec = message.info.queue
        self.model.queue_revision += 1
        # What is alive now (Textual, pika, Rich, the widgets) mostly lives as long as the app
        # (what goes earlier, such as a removed worker's panel, waits for the unfreeze at exit).
        # Out of the collector's reach, full collections no longer walk it: in a flood of
        # events they stopped every thread, the UI's included, for ~100 ms at a time.
        gc.collect()
        gc.freeze()
        self._session_up.set()
        self._draw()

    def on_session_failed(self, message: SessionFailed) -> None:
        self.startup_error = message.error
        self._draw()
        self.exit(return_code=2)
        self._signal_change()

    def on_engine_events_ready(self, _message: EngineEventsReady) -> None:
        self._take_events()

    def _take_events(self) -> None:
        """Fold the bridge's next slice of events into the model (a notice, or the tick)."""
        events, more = self.bridge.take()
        if events:
            self.model.apply_all(events)
        if more:
            # The rest after whatever input arrived meanwhile: a flood never starves the keys.
            self.post_message(EngineEventsReady())

    def _command_finished(self, outcome: CommandOutcome) -> None:
        """Command thread."""
        self.post_message(CommandFinished(outcome))

    def on_command_finished(self, message: CommandFinished) -> None:
        outcome = message.outcome
        if outcome.error is not None:
            self.notify(f"{outcome.label}: {outcome.error}", severity="error", timeout=8)
        else:
            self.notify(f"{outcome.label}: done", timeout=3)

    # --- drawing ------------------------------------------------------------------------------

    def _draw(self) -> None:
        """The refresh tick: take the events no notice announced and the ledger's counts, then
        push what changed in the model to the widgets (each panel with its worker's recent
        tasks).

        In a flood (more than FLOOD_TASKS_PER_TICK deliveries and finishes since the last tick,
        until it falls under half of that) the screen is redrawn only every
        FLOOD_FRAME_INTERVAL, one worker panel per frame in turn, never within INPUT_FIRST of a
        key or click, and per-message events stop (the engine builds none; the event log misses
        them): each frame costs the UI thread (and the GIL, which the workers need) little, and
        a key press never waits behind a long frame. Once the flood ends, the next tick draws
        everything."""
        if self.return_code is not None:
            return  # exiting: the widgets may be half taken down already
        self._take_events()
        model = self.model
        engine = self.engine_or_none(quiet=True)
        if engine is not None:
            model.set_counts(engine.worker_counts())
        now = time.monotonic()
        activity = model.activity()
        threshold = FLOOD_TASKS_PER_TICK // 2 if self._flooding else FLOOD_TASKS_PER_TICK
        flooding = self._flooding = activity - self._activity_at_tick > threshold
        self._activity_at_tick = activity
        self.session.follow_each_message(not flooding)
        if flooding and (
            now - self._flood_frame_at < FLOOD_FRAME_INTERVAL or now - self._input_at < INPUT_FIRST
        ):
            self._signal_change()  # the model moved on: waiters re-check (nothing drawn)
            return
        self._flood_frame_at = now if flooding else 0.0
        grid = self.parts.grid
        if model.layout_revision != self._drawn_layout:
            self._drawn_layout = model.layout_revision
            grid.sync(list(model.workers))
            if self.selected not in model.workers:
                self.selected = next(iter(model.workers), None)
            self._mark_selected()
        self._draw_panels(engine, now, one_in_turn=flooding)
        if model.queue_revision != self._drawn_queue and self.info is not None:
            self._drawn_queue = model.queue_revision
            spec = model.queue_spec or self.info.queue
            facts = header_facts(
                self.info,
                spec,
                model.queue_stats,
                model.broker_state,
                show_port=not self.options.stable_screen,
            )
            self.parts.header.show(facts)
            self.parts.queue_bar.show(model.queue_stats, model.backlog)
            self.parts.totals.show(totals_text(model.totals, model.queue_stats))
        self.parts.mode.show(self._mode_text())
        if self.show_log and (model.log_total, flooding) != self._drawn_log:
            self._drawn_log = (model.log_total, flooding)
            self.parts.log.show(model.log, model.log_total, each_message=not flooding)
        for severity, text in model.take_notices():
            self.notify(text, severity="error" if severity == "error" else "information")
        if not flooding and model.revision != self._drawn_revision:
            self._drawn_revision = model.revision
        self._signal_change()

    def _draw_panels(self, engine: Engine | None, now: float, one_in_turn: bool) -> None:
        panels = [panel for panel in self.parts.grid.panels if panel.is_mounted]
        if one_in_turn and panels:
            self._panel_turn = (self._panel_turn + 1) % len(panels)
            panels = [panels[self._panel_turn]]
        if engine is not None:
            for panel in panels:
                self._sync_tasks(engine, panel.worker)
            # Counted after the lists were read (the worker books a task before it lists it),
            # so a total is never below the rows under it.
            self.model.set_counts(engine.worker_counts())
        for panel in panels:
            view = self.model.workers.get(panel.worker)
            if view is not None:
                panel.show(view, now)

    def _sync_tasks(self, engine: Engine, worker: str) -> None:
        view = self.model.workers.get(worker)
        if view is None:
            return
        recent = view.tasks_source
        if recent is None:
            try:
                # Kept on the view: a worker being removed (it settles its tasks as it stops)
                # is no longer the engine's, yet its panel stays until WorkerRemoved.
                recent = view.tasks_source = engine.recent_tasks(worker)
            except UnknownWorker:
                return
        if view.tasks_version != recent.version:
            self.model.sync_tasks(worker, recent.view())

    def _mode_text(self) -> Text:
        model = self.model
        view = model.workers.get(self.selected) if self.selected else None
        return mode_text(
            model.common_settings(),
            self.selected,
            view.settings if view else None,
            self._seconds_per_dot(),
        )

    def _seconds_per_dot(self) -> float:
        engine = self.engine_or_none(quiet=True)
        return engine.seconds_per_dot if engine else self.options.seconds_per_dot

    def _signal_change(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 10.0, drawn: bool = True
    ) -> None:
        """Wait (for tests and scripts) until predicate() holds and, with `drawn`, a refresh
        tick has drawn the model as it is (in a flood, that is once the flood is over);
        TimeoutError at the deadline. Wakes at each refresh tick and on each UI change."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if predicate() and (not drawn or self._drawn_revision >= self.model.revision):
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout} s")
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                continue

    async def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until the broker, the engine and the first workers are up."""
        await asyncio.wait_for(self._session_up.wait(), timeout)

    def watch_selected(self, _old: str | None, _new: str | None) -> None:
        # The new mark now, the old one in the next frame: the compositor repaints everything
        # between the rows of one frame's changes, and one row alone is cheap (a quick key).
        panel = self.parts.grid.panel(self.selected or "")
        if panel is not None:
            panel.mark_selected(True)
            self.parts.grid.scroll_to_widget(panel, animate=False)
        self.call_after_refresh(self._mark_selected)
        self._signal_change()

    def _mark_selected(self) -> None:
        for panel in self.parts.grid.panels:
            panel.mark_selected(panel.worker == self.selected)

    def watch_show_log(self, shown: bool) -> None:
        log = self.parts.log
        log.display = shown
        if shown:
            self._drawn_log = None  # the next tick says whether a flood is on
            log.show(self.model.log, self.model.log_total)
        self._signal_change()

    # --- helpers ------------------------------------------------------------------------------

    def engine_or_none(self, quiet: bool = False) -> Engine | None:
        if self.session.started:
            try:
                return self.session.engine
            except RuntimeError:  # stopped by another thread (shutdown) just now
                pass
        if not quiet:
            self.notify("still starting: one moment", severity="warning", timeout=2)
        return None

    def _selected_worker(self) -> str | None:
        if self.selected is None:
            self.notify("no worker selected: press a to add one", severity="warning")
        return self.selected

    def _refusing(self, action: Callable[[], object]) -> bool:
        """Run an engine request; a refusal is shown, and changes nothing. True when it ran."""
        try:
            action()
        except _REFUSALS as error:
            self.notify(str(error).strip("'\""), severity="error")
            return False
        return True

    def _common_or_selected(self) -> WorkerSettings:
        common = self.model.common_settings()
        if common is not None:
            return common
        view = self.model.workers.get(self.selected or "")
        return view.settings if view else WorkerSettings(prefetch=self.options.prefetch)

    # --- tasks --------------------------------------------------------------------------------

    def on_publish_bar_task_submitted(self, message: PublishBar.TaskSubmitted) -> None:
        bar = self.parts.publish
        engine = self.engine_or_none()
        if engine is None:
            return
        try:
            engine.publish(message.body)
        except TaskTooLarge as error:
            bar.refused(message.body, str(error))
            return
        bar.accepted(message.body)

    def action_focus_task(self) -> None:
        self.parts.publish.input.focus()

    def action_leave_task(self) -> None:
        self.parts.grid.focus()

    def action_publish_copies(self) -> None:
        engine = self.engine_or_none()
        if engine is None:
            return
        typed = self.parts.publish.input.value or "Hello World!"

        def publish(choice: Copies | Batch | None) -> None:
            if isinstance(choice, Copies):
                self._publish_many(lambda: engine.publish_copies(choice.body, choice.count))

        self.push_screen(CopiesScreen(typed), publish)

    def action_heavy_light(self) -> None:
        engine = self.engine_or_none()
        if engine is None:
            return

        def publish(choice: Copies | Batch | None) -> None:
            if isinstance(choice, Batch):
                self._publish_many(
                    lambda: engine.publish_heavy_light(
                        choice.count, choice.heavy_dots, choice.light_dots
                    )
                )

        self.push_screen(BatchScreen(), publish)

    def _publish_many(self, publish: Callable[[], object]) -> None:
        try:
            publish()
        except (TaskTooLarge, SettingsError) as error:
            self.notify(str(error), severity="error")

    # --- workers ------------------------------------------------------------------------------

    def on_worker_panel_selected(self, message: WorkerPanel.Selected) -> None:
        self.selected = message.worker
        self.parts.grid.focus()

    def action_select(self, step: int) -> None:
        names = list(self.model.workers)
        if not names:
            return
        index = names.index(self.selected) if self.selected in names else 0
        self.selected = names[(index + step) % len(names)]

    def action_select_row(self, step: int) -> None:
        self.action_select(step * self.parts.grid.columns)

    def action_add_worker(self) -> None:
        engine = self.engine_or_none()
        if engine is None:
            return
        if len(self.model.workers) >= MAX_WORKERS:
            self.notify(f"{MAX_WORKERS} workers is the most this lab runs", severity="warning")
            return
        settings = self._common_or_selected()
        self._refusing(lambda: engine.add_worker(settings))

    def action_remove_worker(self) -> None:
        engine, name = self.engine_or_none(), self._selected_worker()
        if engine is None or name is None:
            return
        self.commands.submit(f"remove {name}", lambda: engine.remove_worker(name))

    def action_kill(self) -> None:
        engine, name = self.engine_or_none(), self._selected_worker()
        if engine is None or name is None:
            return

        def kill(mode: KillMode | None) -> None:
            if mode is not None:
                self._refusing(lambda: engine.kill(name, mode))

        self.push_screen(KillScreen(name), kill)

    def action_revive(self) -> None:
        engine, name = self.engine_or_none(), self._selected_worker()
        if engine is not None and name is not None:
            self._refusing(lambda: engine.revive(name))

    def action_pause(self) -> None:
        engine, name = self.engine_or_none(), self._selected_worker()
        if engine is None or name is None:
            return

        def toggle() -> None:
            if engine.worker(name).paused:
                engine.resume(name)
            else:
                engine.pause(name)

        self._refusing(toggle)

    # --- settings -----------------------------------------------------------------------------

    def action_prefetch_all(self, prefetch: int) -> None:
        self.set_prefetch(prefetch, None)

    def set_prefetch(self, prefetch: int, worker: str | None) -> None:
        engine = self.engine_or_none()
        if engine is not None:
            self._refusing(lambda: engine.set_prefetch(prefetch, worker))

    def set_auto_ack(self, on: bool, worker: str | None) -> None:
        engine = self.engine_or_none()
        if engine is not None:
            self._refusing(lambda: engine.set_auto_ack(on, worker))

    def set_ack_timing(self, timing: AckTiming, worker: str | None) -> None:
        engine = self.engine_or_none()
        if engine is not None:
            self._refusing(lambda: engine.set_ack_timing(timing, worker))

    def set_forget_ack(self, on: bool, worker: str | None) -> None:
        engine = self.engine_or_none()
        if engine is not None:
            self._refusing(lambda: engine.set_forget_ack(on, worker))

    def action_toggle_auto_ack(self) -> None:
        self.set_auto_ack(not self._common_or_selected().auto_ack, None)

    def action_toggle_ack_timing(self) -> None:
        current = self._common_or_selected().ack_timing
        after = AckTiming.AFTER_WORK
        self.set_ack_timing(AckTiming.BEFORE_WORK if current is after else after, None)

    def action_toggle_forget_ack(self) -> None:
        self.set_forget_ack(not self._common_or_selected().forget_ack, None)

    def action_settings(self) -> None:
        engine, name = self.engine_or_none(), self._selected_worker()
        if engine is None or name is None:
            return
        view = self.model.workers.get(name)
        settings = view.settings if view else WorkerSettings()
        shared = self.model.common_settings() is not None

        def apply(choice: SettingsChoice | None) -> None:
            if choice is not None:
                self.apply_settings(choice)

        self.push_screen(SettingsScreen(name, settings, engine.seconds_per_dot, shared), apply)

    def apply_settings(self, choice: SettingsChoice) -> None:
        engine = self.engine_or_none()
        if engine is None:
            return
        new = choice.settings

        def apply() -> None:
            engine.update_workers(
                choice.worker,
                prefetch=new.prefetch,
                auto_ack=new.auto_ack,
                ack_timing=new.ack_timing,
                forget_ack=new.forget_ack,
            )
            engine.set_seconds_per_dot(choice.seconds_per_dot)

        if self._refusing(apply):
            self._signal_change()

    # --- queue and broker ---------------------------------------------------------------------

    def action_purge(self) -> None:
        engine = self.engine_or_none()
        if engine is not None:
            self.commands.submit("purge the queue", engine.purge)

    def action_restart_broker(self) -> None:
        engine = self.engine_or_none()
        if engine is None:
            return
        if engine.control is None:
            self.notify(
                "only the embedded broker can be restarted from here (this is --url)",
                severity="warning",
            )
            return

        def restart(kill: bool | None) -> None:
            if kill is not None:
                how = "kill" if kill else "clean stop"
                self.commands.submit(
                    f"restart the broker ({how})", lambda: engine.restart_broker(kill)
                )

        self.push_screen(BrokerRestartScreen(), restart)

    def action_queue_type(self) -> None:
        engine = self.engine_or_none()
        if engine is None:
            return
        spec = engine.queue_spec()

        def redeclare(target: QueueType | None) -> None:
            if target is not None:
                new = QueueSpec(name=spec.name, durable=True, queue_type=target)
                self.commands.submit(
                    f"redeclare {spec.name} as {target.value}",
                    lambda: engine.redeclare_queue(new),
                )

        self.push_screen(QueueTypeScreen(spec.name, spec.queue_type), redeclare)

    # --- screen -------------------------------------------------------------------------------

    def action_toggle_log(self) -> None:
        self.show_log = not self.show_log

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from lab_commands(self)


def create_app(options: LabOptions | None = None) -> QueueLabApp:
    """The one way the app is made: by the CLI, the tests, the screenshot script, the benchmark."""
    return QueueLabApp(options or LabOptions())
