"""Publish many tasks at once: N copies of one task, or the tutorial's heavy/light batch."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label

from tui_queue.ui.screens.form import FormScreen, field_row, parse_int

MAX_COPIES = 100_000
MAX_DOTS = 60


@dataclass(frozen=True, slots=True)
class Copies:
    body: str
    count: int


@dataclass(frozen=True, slots=True)
class Batch:
    count: int
    heavy_dots: int
    light_dots: int


class _ManyScreen(FormScreen[Copies | Batch | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    TITLE = ""

    def fields(self) -> list[tuple[str, str, str, str]]:
        """(id, label, initial value, note) per field."""
        raise NotImplementedError

    def result(self) -> Copies | Batch | None:
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="many-dialog"):
            yield Label(self.TITLE, classes="dialog-title")
            for field, label, value, note in self.fields():
                yield field_row(field, label, Input(value, id=field, compact=True), note)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Publish (Enter)", id="many-publish", variant="primary", compact=True)
                yield Button("Cancel (Esc)", id="many-cancel", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "many-publish":
            self.submit()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def submit(self) -> None:
        self.begin_checks()
        result = self.result()
        if not self.refused and result is not None:
            self.dismiss(result)

    def action_cancel(self) -> None:
        self.dismiss(None)


class CopiesScreen(_ManyScreen):
    TITLE = "Publish copies of one task"

    def __init__(self, body: str) -> None:
        super().__init__()
        self.body = body

    def fields(self) -> list[tuple[str, str, str, str]]:
        return [
            ("copies-body", "Task", self.body, "each dot: a second of work (times the speed)"),
            ("copies-count", "Copies", "10", f"1 to {MAX_COPIES:,}"),
        ]

    def result(self) -> Copies | None:
        count = self.check("copies-count", lambda t: parse_int(t, "copies", 1, MAX_COPIES))
        body = self.query_one("#copies-body", Input).value
        return None if count is None else Copies(body, count)


class BatchScreen(_ManyScreen):
    TITLE = "Publish a heavy/light batch: odd tasks heavy, even ones light"

    def fields(self) -> list[tuple[str, str, str, str]]:
        return [
            ("batch-count", "Tasks", "10", f"1 to {MAX_COPIES:,}"),
            ("batch-heavy", "Heavy dots", "5", "seconds of work of a heavy task"),
            ("batch-light", "Light dots", "1", "seconds of work of a light task"),
        ]

    def result(self) -> Batch | None:
        count = self.check("batch-count", lambda t: parse_int(t, "tasks", 1, MAX_COPIES))
        heavy = self.check("batch-heavy", lambda t: parse_int(t, "heavy dots", 0, MAX_DOTS))
        light = self.check("batch-light", lambda t: parse_int(t, "light dots", 0, MAX_DOTS))
        if count is None or heavy is None or light is None:
            return None
        return Batch(count, heavy, light)
