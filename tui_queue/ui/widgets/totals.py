"""The ledger's totals and the tutorial's invariant: published = done + ready + unacked + lost."""

from __future__ import annotations

from rich.text import Text

from tui_queue.engine import LedgerTotals, QueueStats


def totals_text(totals: LedgerTotals | None, stats: QueueStats | None) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    if totals is None:
        text.append("no tasks yet", "dim")
        return text
    # The broker's ready/unacked when it gave them (minus what others published), else our books.
    ready, unacked = totals.ready, totals.unacked
    if stats is not None and stats.ready is not None and stats.unacked is not None:
        ready, unacked = stats.ready, stats.unacked - totals.external_held
    parts: list[tuple[str, int, str]] = [
        ("done", totals.done, "green"),
        ("ready", ready, ""),
        ("unacked", unacked, ""),
        ("lost", totals.lost, "bold red" if totals.lost else ""),
    ]
    if totals.in_hand:
        parts.append(("in hand", totals.in_hand, ""))
    if totals.purged:
        parts.append(("purged", totals.purged, ""))
    text.append("published ", "dim")
    text.append(f"{totals.published:,}", "bold")
    text.append(" = ", "dim")
    for index, (label, value, style) in enumerate(parts):
        if index:
            text.append(" + ", "dim")
        text.append(f"{label} ", "dim")
        text.append(f"{value:,}", style or "bold")
    balance = totals.published - sum(value for _label, value, _style in parts)
    if balance == 0:
        text.append("  ✓", "bold green")
    else:
        text.append(f"  ({balance:+,} in transit)", "dim")
    extras = [
        ("redelivered", totals.redelivered, "yellow"),
        ("duplicates", totals.duplicates, "bold yellow"),
        ("from others", totals.external_received, ""),
    ]
    for label, value, style in extras:
        if value:
            text.append("  ·  ", "dim")
            text.append(f"{label} {value:,}", style)
    return text
