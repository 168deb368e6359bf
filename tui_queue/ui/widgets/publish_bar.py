"""Where tasks are typed: Enter publishes, ↑/↓ recall earlier tasks, refusals show beside it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label

PLACEHOLDER = (
    'Type a task, Enter publishes it (a dot is a second of work: "Third message...")'
    "  ·  Esc: keys  ·  F1: help"
)


class PublishBar(Horizontal):
    BINDINGS = [
        Binding("up", "recall(-1)", "Earlier task", show=False),
        Binding("down", "recall(1)", "Later task", show=False),
    ]

    class TaskSubmitted(Message):
        """The person asked to publish `body` (empty: the tutorial's "Hello World!")."""

        def __init__(self, body: str) -> None:
            super().__init__()
            self.body = body

    def __init__(self, cursor_blink: bool = True, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._cursor_blink = cursor_blink
        self._history: list[str] = []
        self._recall_at = 0

    def compose(self) -> ComposeResult:
        yield Label("task ›", id="publish-prompt")
        task = Input(placeholder=PLACEHOLDER, id="task-input", compact=True)
        task.cursor_blink = self._cursor_blink
        yield task
        yield Label("", id="publish-error")

    @property
    def input(self) -> Input:
        return self.query_one("#task-input", Input)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.TaskSubmitted(event.value))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.show_error("")

    def accepted(self, body: str) -> None:
        """The task went to the publisher: clear the field, remember it for ↑."""
        if body and (not self._history or self._history[-1] != body):
            self._history.append(body)
        self._recall_at = len(self._history)
        # Keys typed after Enter (a fast typist, a burst from a script) are the next task.
        value = self.input.value
        self.input.value = value[len(body) :] if value.startswith(body) else value
        self.show_error("")

    def show_error(self, message: str) -> None:
        """A refusal next to the field; the typed text stays for correcting."""
        label = self.query_one("#publish-error", Label)
        label.update(message)
        label.set_class(bool(message), "-shown")

    @property
    def error(self) -> str:
        return str(self.query_one("#publish-error", Label).content)

    def action_recall(self, step: int) -> None:
        if not self._history:
            return
        self._recall_at = max(0, min(len(self._history), self._recall_at + step))
        value = self._history[self._recall_at] if self._recall_at < len(self._history) else ""
        self.input.value = value
        self.input.cursor_position = len(value)
