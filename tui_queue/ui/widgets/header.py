"""The top line: the broker (embedded or a URL, with its port), the queue, its type, durability."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from tui_queue.engine import BrokerState, EngineInfo, QueueSpec, QueueStats, StatsSource


@dataclass(frozen=True, slots=True)
class HeaderFacts:
    """Everything the header shows; equal facts mean nothing to redraw."""

    broker: str
    queue: str
    queue_type: str
    durable: bool
    broker_state: BrokerState
    stats_note: str


def broker_text(info: EngineInfo, show_port: bool) -> str:
    where = f"{info.host}:{info.port}" if show_port else info.host
    if info.embedded:
        return f"embedded broker amqp://{where}"
    vhost = "" if info.vhost == "/" else f"/{info.vhost}"
    return f"broker amqp://{where}{vhost}"


def header_facts(
    info: EngineInfo,
    spec: QueueSpec,
    stats: QueueStats | None,
    broker_state: BrokerState,
    show_port: bool,
) -> HeaderFacts:
    queue_type = spec.queue_type.value
    durable = spec.durable
    note = ""
    if stats is not None:
        # What the broker says wins over what we asked for.
        if stats.queue_type:
            queue_type = stats.queue_type
        if stats.durable is not None:
            durable = stats.durable
        if stats.source is StatsSource.PASSIVE_DECLARE:
            note = "stats: passive declare (no management API)"
        elif stats.source is StatsSource.UNAVAILABLE:
            note = f"stats unavailable: {stats.detail}"
    return HeaderFacts(
        broker=broker_text(info, show_port),
        queue=spec.name,
        queue_type=queue_type,
        durable=durable,
        broker_state=broker_state,
        stats_note=note,
    )


class BrokerHeader(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._facts: HeaderFacts | None = None

    def on_mount(self) -> None:
        self.show_starting("starting…")

    def show_starting(self, what: str) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" tui-queue ", "bold reverse")
        text.append(f"  {what}", "italic")
        self.update(text, layout=False)

    def show(self, facts: HeaderFacts) -> None:
        if facts == self._facts:
            return
        self._facts = facts
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" tui-queue ", "bold reverse")
        text.append("  ")
        text.append(facts.broker, "bold")
        if facts.broker_state is BrokerState.RESTARTING:
            text.append("  restarting…", "bold yellow")
        text.append("  │  queue ", "dim")
        text.append(facts.queue, "bold")
        text.append(f" · {facts.queue_type} · ", "")
        text.append("durable" if facts.durable else "transient", "" if facts.durable else "yellow")
        if facts.stats_note:
            text.append(f"  │  {facts.stats_note}", "dim yellow")
        self.update(text, layout=False)
