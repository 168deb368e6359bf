"""A worker's Received or Done list: the last entries that fit, under an exact total."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widget import Widget

from tui_queue.ui.model import Status, TaskEntry

STATUS_ICON = {
    Status.WAITING: "·",
    Status.WORKING: "▶",
    Status.DONE: "✓",
    Status.REQUEUED: "↩",
    Status.LOST: "✗",
}
STATUS_STYLE = {
    Status.WAITING: "dim",
    Status.WORKING: "bold",
    Status.DONE: "green",
    Status.REQUEUED: "magenta",
    Status.LOST: "bold red",
}


def entry_tags(entry: TaskEntry, in_done_list: bool) -> list[tuple[str, str]]:
    """The marks after a task's text: (label, style)."""
    tags: list[tuple[str, str]] = []
    if entry.redelivered:
        tags.append(("redelivered", "yellow"))
    if entry.duplicate:
        tags.append(("duplicate", "bold yellow"))
    if not in_done_list and entry.status is Status.REQUEUED:
        tags.append(("requeued", "magenta"))
    if not in_done_list and entry.status is Status.LOST:
        tags.append(("lost", "bold red"))
    return tags


def entry_line(entry: TaskEntry, width: int, in_done_list: bool) -> Text:
    """One line, cut to `width`; the body is shortened first so the marks stay visible."""
    status = Status.DONE if in_done_list else entry.status
    number = "ext" if entry.seq is None else f"#{entry.seq}"
    prefix = f"{STATUS_ICON[status]} {number} "
    tags = entry_tags(entry, in_done_list)
    tail = "".join(f" {label}" for label, _style in tags)
    room = max(0, width - len(prefix) - len(tail))
    body = entry.body if len(entry.body) <= room else entry.body[: max(0, room - 1)] + "…"
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(prefix, STATUS_STYLE[status])
    line.append(body, "dim" if status is Status.WAITING else "")
    for label, style in tags:
        line.append(" ")
        line.append(label, style)
    line.truncate(width, overflow="ellipsis")
    return line


class TaskList(Widget):
    """Renders the tail of a bounded list; `show` hands it the entries and their exact total."""

    DEFAULT_CSS = """
    TaskList {
        height: 1fr;
        width: 1fr;
        min-height: 2;
    }
    """

    def __init__(self, title: str, in_done_list: bool, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title
        self.in_done_list = in_done_list
        self._entries: Sequence[TaskEntry] = ()
        self._total = 0

    @property
    def total(self) -> int:
        return self._total

    def show(self, entries: Sequence[TaskEntry], total: int) -> None:
        self._entries = entries
        self._total = total
        self.refresh()

    def lines(self, width: int, height: int) -> list[Text]:
        """What is on screen, as lines: the title with the total, then the newest entries."""
        shown = max(0, height - 1)
        entries = list(self._entries)[-shown:] if shown else []
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(f"{self.title} ", "bold")
        title.append(f"{self._total:,}", "bold cyan")
        scope = f"  last {len(entries)}"
        # The total always; how many are listed only if it fits (a line never wraps).
        if self._total > len(entries) and len(title) + len(scope) <= width:
            title.append(scope, "dim")
        title.truncate(width, overflow="ellipsis")
        return [title] + [entry_line(entry, width, self.in_done_list) for entry in entries]

    def render(self) -> Text:
        width, height = self.size
        return Text("\n", no_wrap=True).join(self.lines(width, height))
