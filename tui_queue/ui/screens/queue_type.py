"""Switch the queue between classic and quorum: a delete and a redeclare, confirmed first."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from tui_queue.engine import QueueType


def explanation(queue: str, current: QueueType, target: QueueType) -> str:
    return (
        f"RabbitMQ refuses to change a queue's type in place: declaring {queue!r} with "
        f"x-queue-type={target.value} while it exists as {current.value} gets "
        "406 PRECONDITION_FAILED (inequivalent arg 'x-queue-type') and the channel is closed. "
        f"So {queue!r} is deleted, with its ready messages, and declared again as {target.value}; "
        "the workers consume the new queue by themselves. A tutorial worker.py in another "
        f"terminal declares a classic queue, and gets that 406 while {queue!r} is quorum."
    )


class QueueTypeScreen(ModalScreen[QueueType | None]):
    BINDINGS = [
        Binding("escape,n", "choose(False)", "Keep it"),
        Binding("y", "choose(True)", "Redeclare"),
    ]

    def __init__(self, queue: str, current: QueueType) -> None:
        super().__init__()
        self.queue = queue
        self.current = current
        self.target = QueueType.QUORUM if current is QueueType.CLASSIC else QueueType.CLASSIC

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="queue-type-dialog"):
            yield Label(
                f"Redeclare {self.queue} as a {self.target.value} queue?", classes="dialog-title"
            )
            yield Label(explanation(self.queue, self.current, self.target), classes="dialog-note")
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    f"Delete and redeclare as {self.target.value} (y)",
                    id="queue-type-yes",
                    variant="warning",
                    compact=True,
                )
                yield Button(f"Keep it {self.current.value} (n)", id="queue-type-no", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose(event.button.id == "queue-type-yes")

    def action_choose(self, confirmed: bool) -> None:
        self.dismiss(self.target if confirmed else None)
