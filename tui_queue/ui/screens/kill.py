"""Kill the selected worker: a choice of how, since each failure teaches something else."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from tui_queue.engine import KillMode

CHOICES: tuple[tuple[KillMode, str, str, str], ...] = (
    (KillMode.CRASH, "Crash", "c", "the TCP connection drops, no AMQP close: unacked go back now"),
    (KillMode.CLEAN, "Clean close", "l", "connection.close: unacked go back, politely"),
    (KillMode.HANG, "Hang", "h", "stops reading and writing: dropped at heartbeat timeout"),
    (KillMode.CANCEL, "Cancel consumer", "x", "basic.cancel: nothing new; it keeps what it holds"),
)


class KillScreen(ModalScreen[KillMode | None]):
    BINDINGS = [
        Binding("escape", "dismiss_none", "Never mind"),
        *(Binding(key, f"choose('{mode.value}')", label) for mode, label, key, _ in CHOICES),
    ]

    def __init__(self, worker: str) -> None:
        super().__init__()
        self.worker = worker

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="kill-dialog"):
            yield Label(f"Kill {self.worker}: how should it die?", classes="dialog-title")
            with Grid(id="kill-choices"):
                for mode, label, key, explanation in CHOICES:
                    yield Button(
                        f"{label} ({key})", id=f"kill-{mode.value}", variant="error", compact=True
                    )
                    yield Label(explanation, classes="dialog-note")
            yield Label("Esc: never mind", classes="dialog-hint")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id is not None:
            self.dismiss(KillMode(event.button.id.removeprefix("kill-")))

    def action_choose(self, mode: str) -> None:
        self.dismiss(KillMode(mode))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
