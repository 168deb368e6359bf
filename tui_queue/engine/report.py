"""A scenario report as a Rich table (for people) or JSON (for scripts)."""

from __future__ import annotations

import json

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from tui_queue.engine.scenarios import ScenarioReport


def render(report: ScenarioReport) -> RenderableType:
    workers = Table(title=f"{report.scenario} on {report.broker}", title_justify="left")
    workers.add_column("worker")
    # Short headers: the table must fit 80 columns.
    for column in ("recv", "done", "busy s", "redeliv", "requeued", "lost", "dup"):
        workers.add_column(column, justify="right")
    workers.add_column("first deliveries", overflow="fold")
    for row in report.workers:
        workers.add_row(
            row.worker,
            str(row.received),
            str(row.done),
            f"{row.busy:.2f}",
            str(row.redelivered),
            str(row.requeued),
            str(row.lost),
            str(row.duplicates),
            ",".join(str(seq) for seq in row.first_deliveries),
        )
    totals = Text(
        f"published {report.published}  done {report.done}  lost {report.lost}  "
        f"duplicates {report.duplicates}  redelivered {report.redelivered}  "
        f"makespan {report.makespan:.2f} s"
    )
    checks = Text()
    for check in report.checks:
        mark, style = ("✓", "green") if check.ok else ("✗", "bold red")
        checks.append(f"{mark} ", style=style)
        checks.append(check.name)
        if check.detail:
            checks.append(f"  ({check.detail})", style="dim")
        checks.append("\n")
    parts: list[RenderableType] = [workers, totals]
    if report.facts:
        parts.append(Text("  ".join(f"{k} {v}" for k, v in report.facts.items()), style="dim"))
    parts.append(checks)
    return Group(*parts)


def print_report(report: ScenarioReport, as_json: bool, console: Console | None = None) -> None:
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
        return
    (console or Console()).print(render(report))
