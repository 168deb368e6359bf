"""The worker panels, reflowed into as many columns as the width allows (1 to 8+ workers)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from textual import events
from textual.containers import ScrollableContainer

from tui_queue.ui.widgets.worker_panel import WorkerPanel

MIN_PANEL_WIDTH = 34
MIN_PANEL_HEIGHT = 11


def grid_shape(count: int, width: int, height: int) -> tuple[int, int, int | None]:
    """(columns, rows, row height); row height None means the rows share the height (1fr)."""
    if count == 0:
        return 1, 1, None
    columns = max(1, min(count, width // MIN_PANEL_WIDTH))
    rows = math.ceil(count / columns)
    if rows * MIN_PANEL_HEIGHT <= height:
        return columns, rows, None
    return columns, rows, MIN_PANEL_HEIGHT  # too many to fit: fixed rows, and it scrolls


class WorkerGrid(ScrollableContainer, can_focus=True):
    """Takes the focus for the workers: the arrow keys then move the selection."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shape: tuple[int, int, int | None] | None = None

    @property
    def panels(self) -> list[WorkerPanel]:
        return list(self.query_children(WorkerPanel))

    def panel(self, worker: str) -> WorkerPanel | None:
        for panel in self.query_children(WorkerPanel):
            if panel.worker == worker:
                return panel
        return None

    def sync(self, workers: Sequence[str]) -> None:
        """Mount a panel per new worker, remove the panels of workers that are gone."""
        present = {panel.worker: panel for panel in self.panels}
        for worker, panel in present.items():
            if worker not in workers:
                panel.remove()
        new = [WorkerPanel(worker) for worker in workers if worker not in present]
        if new:
            self.mount(*new)
        self.reflow(len(workers))

    @property
    def columns(self) -> int:
        return self._shape[0] if self._shape else 1

    def on_resize(self, _event: events.Resize) -> None:
        self.reflow(len(self.panels))

    def reflow(self, count: int) -> None:
        shape = grid_shape(count, self.size.width, self.size.height)
        if shape == self._shape:
            return
        self._shape = shape
        columns, rows, row_height = shape
        self.styles.grid_size_columns = columns
        self.styles.grid_size_rows = rows
        self.styles.grid_rows = "1fr" if row_height is None else str(row_height)
