"""The engine's events as lines, newest at the bottom; shown or hidden with a key."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widget import Widget

from tui_queue.engine import (
    BrokerStateChanged,
    EngineError,
    Event,
    MessageAcked,
    MessageLost,
    MessagePublished,
    MessageReceived,
    MessageRequeued,
    QueuePurged,
    QueueRedeclared,
    WorkDone,
    WorkerAdded,
    WorkerKilled,
    WorkerRemoved,
    WorkerSettingsChanged,
    WorkerStateChanged,
    WorkStarted,
    describe_mode,
)


def _number(seq: int | None) -> str:
    return "ext" if seq is None else f"#{seq}"


def describe_event(event: Event) -> Text:
    """One line for one event, in the words of the tutorial."""
    match event:
        case MessagePublished():
            return Text.assemble(
                ("publisher ", "bold"), f"sent {_number(event.seq)} {event.body!r}"
            )
        case MessageReceived():
            tail = " (redelivered)" if event.redelivered else ""
            return Text.assemble(
                (f"{event.worker} ", "bold"),
                f"received {_number(event.seq)} {event.body!r}",
                (tail, "yellow"),
            )
        case WorkStarted():
            return Text.assemble(
                (f"{event.worker} ", "bold"),
                f"works on {_number(event.seq)} for {event.duration:.1f}s",
            )
        case WorkDone():
            tail = " (duplicate)" if event.duplicate else ""
            return Text.assemble(
                (f"{event.worker} ", "bold"),
                (f"done {_number(event.seq)}", "green"),
                (tail, "bold yellow"),
            )
        case MessageAcked():
            when = " before the work" if event.before_work else ""
            return Text.assemble((f"{event.worker} ", "bold"), f"acked {_number(event.seq)}{when}")
        case MessageRequeued():
            return Text.assemble(
                ("broker ", "bold"),
                (f"requeued {_number(event.seq)} from {event.worker}", "magenta"),
                (f": {event.reason}", "dim"),
            )
        case MessageLost():
            who = event.worker or "broker"
            return Text.assemble(
                (f"{who} ", "bold"),
                (f"lost {_number(event.seq)}", "bold red"),
                (f": {event.reason}", "dim"),
            )
        case WorkerStateChanged():
            reason = f": {event.reason}" if event.reason else ""
            return Text.assemble(
                (f"{event.worker} ", "bold"), f"is {event.state.value}", (reason, "dim")
            )
        case WorkerSettingsChanged():
            return Text.assemble((f"{event.worker} ", "bold"), describe_mode(event.settings))
        case WorkerKilled():
            return Text.assemble(
                (f"{event.worker} ", "bold"),
                (f"killed ({event.mode.value})", "bold red"),
                f": {event.requeued} requeued, {event.lost} lost",
            )
        case WorkerAdded():
            return Text.assemble((f"{event.worker} ", "bold"), "added")
        case WorkerRemoved():
            return Text.assemble((f"{event.worker} ", "bold"), "removed")
        case BrokerStateChanged():
            detail = f" ({event.detail})" if event.detail else ""
            return Text.assemble(("broker ", "bold"), f"{event.state.value}{detail}")
        case QueuePurged():
            return Text.assemble(("broker ", "bold"), f"purged {event.count} from {event.queue}")
        case QueueRedeclared():
            kind = event.spec.queue_type.value
            return Text.assemble(("broker ", "bold"), f"{event.spec.name} redeclared as {kind}")
        case EngineError():
            return Text.assemble((f"{event.where} ", "bold red"), event.message)
    return Text(type(event).__name__, "dim")


class EventLog(Widget):
    DEFAULT_CSS = """
    EventLog {
        height: 8;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._events: Sequence[Event] = ()
        self._total = 0
        self._each_message = True

    def show(self, events: Sequence[Event], total: int, each_message: bool = True) -> None:
        """`each_message` False: per-message events are off (a flood), and the title says so."""
        self._events = events
        self._total = total
        self._each_message = each_message
        self.refresh()

    def render(self) -> Text:
        width, height = self.size
        shown = max(0, height - 1)
        title = Text(no_wrap=True)
        title.append("Event log ", "bold")
        title.append(f"{self._total:,} events", "dim")
        if not self._each_message:
            title.append("   a flood: no line per message until it ends", "yellow")
        title.append("   l hides it", "dim")
        count = min(shown, len(self._events))
        recent = [self._events[-count + index] for index in range(count)] if count else []
        lines = [title]
        for event in recent:
            line = describe_event(event)
            line.no_wrap = True
            line.truncate(width, overflow="ellipsis")
            lines.append(line)
        return Text("\n").join(lines)
