"""A one-line Static that redraws only when its text changes."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class TextLine(Static):
    """Lines rebuilt at every refresh tick mostly say the same thing; an unchanged one costs
    nothing (and never asks for a layout: its height is fixed)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._plain = ""

    def show(self, text: Text) -> None:
        if text.plain != self._plain:
            self._plain = text.plain
            self.update(text, layout=False)
