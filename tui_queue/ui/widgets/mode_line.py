"""One line on what the workers' settings mean, as the tutorial would say it."""

from __future__ import annotations

from rich.text import Text

from tui_queue.engine import WorkerSettings, describe_mode


def mode_text(
    common: WorkerSettings | None,
    selected: str | None,
    selected_settings: WorkerSettings | None,
    seconds_per_dot: float,
) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    if common is not None:
        text.append("all workers ", "bold")
        text.append("— " + describe_mode(common))
    elif selected is not None and selected_settings is not None:
        text.append(f"{selected} ", "bold")
        text.append("— " + describe_mode(selected_settings))
        text.append("  (settings differ between workers)", "dim")
    else:
        text.append("no workers: press a to add one", "dim")
    text.append(f"  ·  {seconds_per_dot:g} s per dot", "dim")
    return text
