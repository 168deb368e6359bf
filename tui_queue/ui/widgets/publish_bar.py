"""Where tasks are typed: Enter publishes, ↑/↓ recall earlier tasks, refusals show beside it."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label

PLACEHOLDER = (
    'Type a task, Enter publishes it (a dot is a second of work: "Third message...")'
    "  ·  Esc: keys  ·  F1: help"
)


class TaskInput(Input):
    """An Input that takes its text away on Enter, in key order.

    Input's own Enter binding runs only after the key has bubbled up to the app, by which time
    the keys typed after it (a fast typist, a script, a paste into tmux) are already in the
    field. Emptying the field as Enter is read keeps each task apart.
    """

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            value, self.value = self.value, ""
            self.post_message(self.Submitted(self, value))
            return
        await super()._on_key(event)


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
        task = TaskInput(placeholder=PLACEHOLDER, id="task-input", compact=True)
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
        """The task went to the publisher: remember it for ↑."""
        if body and (not self._history or self._history[-1] != body):
            self._history.append(body)
        self._recall_at = len(self._history)
        self.show_error("")

    def refused(self, body: str, reason: str) -> None:
        """The task was not published: give its text back for correcting, and say why."""
        # Not an edit by the person: its Changed message would clear the reason just shown.
        with self.input.prevent(Input.Changed):
            self.input.value = body + self.input.value
        self.input.cursor_position = len(body)
        self.show_error(reason)

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
