"""Restart the embedded broker, by SIGKILL or cleanly: what survives is the durability lesson."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

EXPLANATION = (
    "Durable queues and persistent messages come back; transient ones do not. The workers lose "
    "their connections, show reconnecting, and come back by themselves. Unacked messages return "
    "to the queue."
)


class BrokerRestartScreen(ModalScreen[bool | None]):
    """Dismissed with True for a kill (SIGKILL), False for a clean stop, None to keep it running."""

    BINDINGS = [
        Binding("escape", "choose('none')", "Never mind"),
        Binding("k", "choose('kill')", "Kill"),
        Binding("s", "choose('stop')", "Clean stop"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="restart-dialog"):
            yield Label("Restart the broker", classes="dialog-title")
            yield Label(EXPLANATION, classes="dialog-note")
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    "Kill it: SIGKILL (k)", id="restart-kill", variant="error", compact=True
                )
                yield Button("Clean stop (s)", id="restart-stop", variant="warning", compact=True)
                yield Button("Never mind (Esc)", id="restart-none", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose((event.button.id or "restart-none").removeprefix("restart-"))

    def action_choose(self, choice: str) -> None:
        self.dismiss({"kill": True, "stop": False}.get(choice))
