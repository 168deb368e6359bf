"""The queue as the broker sees it: ready, unacked, consumers, rates, and a backlog sparkline."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static

from tui_queue.engine import QueueStats


def _count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}/s"


def counts_text(stats: QueueStats | None) -> Text:
    text = Text(no_wrap=True)
    for index, (label, value) in enumerate(
        (
            ("ready", _count(stats.ready if stats else None)),
            ("unacked", _count(stats.unacked if stats else None)),
            ("consumers", _count(stats.consumers if stats else None)),
        )
    ):
        if index:
            text.append("  ")
        text.append(f"{label} ", "dim")
        text.append(value, "bold")
    return text


def rates_text(stats: QueueStats | None, show_rates: bool) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    if not show_rates:
        text.append("rates hidden", "dim")
        return text
    for index, (label, value) in enumerate(
        (
            ("publish", _rate(stats.publish_rate if stats else None)),
            ("deliver", _rate(stats.deliver_rate if stats else None)),
            ("ack", _rate(stats.ack_rate if stats else None)),
        )
    ):
        if index:
            text.append("  ")
        text.append(f"{label} ", "dim")
        text.append(value)
    return text


def backlog_text(backlog: Sequence[float], show_rates: bool) -> Text:
    text = Text(no_wrap=True)
    text.append("backlog", "dim")
    if show_rates and backlog:
        # The sparkline scales to its own range: this says what its top means.
        text.append(f" max {max(backlog):,.0f}", "")
    return text


class QueueBar(Horizontal):
    """`show_rates=False` keeps timing out of the picture (tests): no rates, a flat sparkline."""

    def __init__(self, show_rates: bool = True, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.show_rates = show_rates
        self._last = ""
        # One fixed-size text: updating it never needs a new layout (a layout is a full frame).
        self._text = Static(self._compose_text(None, ()), id="queue-text")
        self._backlog = Sparkline([], id="backlog")

    def compose(self) -> ComposeResult:
        yield self._text
        yield self._backlog

    def _compose_text(self, stats: QueueStats | None, backlog: Sequence[float]) -> Text:
        return Text(" │ ", "dim", no_wrap=True, overflow="ellipsis").join(
            [
                counts_text(stats),
                rates_text(stats, self.show_rates),
                backlog_text(backlog, self.show_rates),
            ]
        )

    def show(self, stats: QueueStats | None, backlog: Sequence[float]) -> None:
        text = self._compose_text(stats, backlog)
        if text.plain != self._last:
            self._last = text.plain
            self._text.update(text, layout=False)
        if self.show_rates and len(backlog) >= 2:  # one sample would draw as a full bar
            self._backlog.data = list(backlog)
