"""One worker on screen: name, state badge, settings, current task with progress, lists, counts."""

from __future__ import annotations

from typing import Self

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.geometry import Region
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Label

from tui_queue.engine import WorkerSettings, WorkerState
from tui_queue.ui.model import WorkerView
from tui_queue.ui.widgets.task_list import TaskList

BADGE_TEXT = {
    WorkerState.CONNECTING: "connecting",
    WorkerState.IDLE: "idle",
    WorkerState.WORKING: "working",
    WorkerState.PAUSED: "paused",
    WorkerState.CANCELLED: "cancelled",
    WorkerState.HUNG: "hung",
    WorkerState.KILLED: "killed",
    WorkerState.RECONNECTING: "reconnecting",
    WorkerState.STOPPED: "stopped",
}


def settings_text(settings: WorkerSettings) -> str:
    if settings.auto_ack:
        return "auto-ack · no prefetch limit"
    if settings.forget_ack:
        return f"prefetch {settings.prefetch} · ack forgotten"
    return f"prefetch {settings.prefetch} · ack {settings.ack_timing.value} work"


def counters_text(view: WorkerView) -> Text:
    """Acks and work always; redelivered, requeued, lost and duplicates once they happen."""
    text = Text(no_wrap=True, overflow="ellipsis")
    parts = [(f"acked {view.acked}", "dim"), (f"work {view.work_seconds:.1f}s", "dim")]
    for label, value, style in (
        ("redelivered", view.redelivered, "yellow"),
        ("requeued", view.requeued, "magenta"),
        ("lost", view.lost, "bold red"),
        ("duplicates", view.duplicates, "bold yellow"),
    ):
        if value:
            parts.append((f"{label} {value}", style))
    for index, (part, style) in enumerate(parts):
        if index:
            text.append(" · ", "dim")
        text.append(part, style)
    return text


class StateBadge(Label):
    """The worker's state in a coloured box; the state is also a class (`-idle`, `-working`...)."""

    state: WorkerState | None = None

    def show(self, state: WorkerState) -> None:
        if state is not self.state:
            self.state = state
            self.update(f" {BADGE_TEXT[state]} ", layout=False)
            for other in WorkerState:
                self.set_class(other is state, f"-{other.value}")


class CurrentTask(Widget):
    """Two lines: the task being worked on, and a bar of its work time (or why there is none)."""

    DEFAULT_CSS = """
    CurrentTask {
        height: 2;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self._view: WorkerView | None = None
        self._now = 0.0

    def show(self, view: WorkerView, now: float) -> None:
        self._view = view
        self._now = now
        self.refresh()

    def render(self) -> Text:
        view = self._view
        width = max(10, self.size.width)
        if view is None:
            return Text("")
        current = view.current
        if current is None:
            return self._no_task(view)
        entry = current.entry
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append("▶ ", "bold")
        head.append("ext " if entry.seq is None else f"#{entry.seq} ", "bold")
        head.append(entry.body)
        if entry.redelivered:
            head.append(" redelivered", "yellow")
        head.truncate(width, overflow="ellipsis")
        duration = current.duration
        elapsed = min(max(self._now - current.started, 0.0), duration)
        label = f" {elapsed:4.1f}/{duration:.1f}s"
        bar_width = max(1, width - len(label))
        filled = bar_width if duration <= 0 else int(bar_width * elapsed / duration)
        bar = Text(no_wrap=True)
        bar.append("━" * filled, "bold green")
        bar.append("━" * (bar_width - filled), "grey30")
        bar.append(label, "dim")
        return Text("\n").join([head, bar])

    def _no_task(self, view: WorkerView) -> Text:
        state = view.state
        if state is WorkerState.KILLED:
            how = f" ({view.killed_how.value})" if view.killed_how else ""
            return Text.from_markup(f"[bold red]killed{how}[/]\n[dim]press v to revive[/]")
        if state is WorkerState.HUNG:
            return Text.from_markup(
                "[bold red]hung[/]: neither reads nor writes\n"
                "[dim]the broker drops it at heartbeat timeout[/]"
            )
        if state is WorkerState.RECONNECTING:
            reason = Text(view.reason or "connection lost", "dim", no_wrap=True)
            reason.truncate(max(10, self.size.width), overflow="ellipsis")
            return Text.assemble(Text("reconnecting…", "bold yellow"), "\n", reason)
        if state is WorkerState.CANCELLED:
            return Text.from_markup("[bold]consumer cancelled[/]\n[dim]gets nothing new[/]")
        if state is WorkerState.PAUSED:
            return Text.from_markup("[bold]paused[/]\n[dim]starts no new task[/]")
        if state is WorkerState.CONNECTING:
            return Text("connecting…", "dim")
        return Text("waiting for a task", "dim")


class WorkerPanel(Vertical):
    """A click selects the worker; commands (kill, revive, pause...) act on the selection.
    Panels take no focus (the grid does): moving the selection then never rebuilds the footer."""

    # While set, plain repaints are left to mark_selected (a class default: no __init__ needed).
    _frame_only = False

    class Selected(Message):
        def __init__(self, worker: str) -> None:
            super().__init__()
            self.worker = worker

    def __init__(self, worker: str) -> None:
        super().__init__(id=f"worker-{worker}", classes="worker-panel")
        self.worker = worker
        self.border_title = worker
        self._rendered_revision = -1
        self._last_settings = ""
        self._last_counters = ""
        self._selected = False
        # Held, not queried: cheaper at every tick, and harmless once the app is taken down.
        self._badge = StateBadge(classes="badge")
        self._settings = Label(classes="worker-settings")
        self._current = CurrentTask()
        self._received = TaskList("Received", in_done_list=False, id=f"received-{worker}")
        self._done = TaskList("Done", in_done_list=True, id=f"done-{worker}")
        self._counters = Label(classes="worker-counters")

    def compose(self) -> ComposeResult:
        with Horizontal(classes="worker-head"):
            yield self._badge
            yield self._settings
        yield self._current
        with Horizontal(classes="worker-lists"):
            yield self._received
            yield self._done
        yield self._counters

    def show(self, view: WorkerView, now: float) -> None:
        """Called at every refresh tick; redraws what changed since the last one."""
        if view.current is not None or view.revision != self._rendered_revision:
            self._current.show(view, now)
        if view.revision == self._rendered_revision:
            return
        self._rendered_revision = view.revision
        self._badge.show(view.state)
        settings = settings_text(view.settings)
        if settings != self._last_settings:
            self._last_settings = settings
            self._settings.update(settings, layout=False)
        self._received.show(view.received.entries, view.received.total)
        self._done.show(view.done.entries, view.done.total)
        counters = counters_text(view)
        if counters.plain != self._last_counters:
            self._last_counters = counters.plain
            self._counters.update(counters, layout=False)
        self.set_class(view.state in (WorkerState.KILLED, WorkerState.HUNG), "-down")

    @property
    def is_selected(self) -> bool:
        return self._selected

    def mark_selected(self, selected: bool) -> None:
        """Marked on the top edge only, and only that row repainted.

        A full repaint of a panel re-composites every row of the grid it spans (about 5 ms of
        the UI thread a panel, and in a flood each ms of it costs several in waits for the
        GIL); one row costs next to nothing, so moving the selection stays quick. (The
        compositor repaints everything between the rows changed in one frame: the app unmarks
        the old panel a frame later.) Inline styles, not a CSS class: a class change would
        re-style every widget inside."""
        if selected == self._selected:
            return
        self._selected = selected
        self._frame_only = True
        try:
            self.border_title = f"▶ {self.worker}" if selected else self.worker
            accent = self.app.theme_variables.get("accent", "orange")
            if selected:
                self.styles.border_top = ("heavy", accent)
            else:
                self.styles.clear_rule("border_top")
        finally:
            self._frame_only = False
        self.refresh(*self._top_row())

    def refresh(self, *regions: Region, **options: bool) -> Self:
        if self._frame_only and not (options.get("layout") or options.get("recompose")):
            return self  # mark_selected repaints the top row itself, once it is changed
        return super().refresh(*regions, **options)

    def _top_row(self) -> list[Region]:
        """The border's top row, in content coordinates (as refresh takes them)."""
        width, height = self.outer_size
        left, top = self.content_offset
        if height < 2:
            return []  # not laid out yet: refresh() then repaints it all
        return [Region(-left, -top, width, 1)]

    def on_click(self) -> None:
        self.post_message(self.Selected(self.worker))
