"""Worker settings, for one worker or all: prefetch N, auto-ack, ack timing, forget-ack, speed."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet

from tui_queue.engine import AckTiming, WorkerSettings
from tui_queue.engine.config import MAX_PREFETCH, validate_seconds_per_dot
from tui_queue.ui.screens.form import FormScreen, field_row, parse_float, parse_int


@dataclass(frozen=True, slots=True)
class SettingsChoice:
    worker: str | None  # None: every worker
    settings: WorkerSettings
    seconds_per_dot: float


class SettingsScreen(FormScreen[SettingsChoice | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        worker: str,
        settings: WorkerSettings,
        seconds_per_dot: float,
        all_workers: bool,
    ) -> None:
        super().__init__()
        self.worker = worker
        self.settings = settings
        self.seconds_per_dot = seconds_per_dot
        self.all_workers = all_workers

    def compose(self) -> ComposeResult:
        settings = self.settings
        after = settings.ack_timing is AckTiming.AFTER_WORK
        with Vertical(classes="dialog", id="settings-dialog"):
            yield Label("Worker settings", classes="dialog-title")
            yield field_row(
                "scope",
                "Apply to",
                RadioSet(
                    RadioButton(f"{self.worker} only", value=not self.all_workers, compact=True),
                    RadioButton(
                        "all workers", value=self.all_workers, id="scope-all", compact=True
                    ),
                    id="scope",
                    compact=True,
                ),
                "",
            )
            yield field_row(
                "prefetch",
                "Prefetch",
                Input(str(settings.prefetch), id="prefetch", compact=True),
                "0 = no limit (round-robin), 1 = fair dispatch",
            )
            yield field_row(
                "auto-ack",
                "Auto-ack",
                Checkbox("on", settings.auto_ack, id="auto-ack", compact=True),
                "the broker forgets a message once sent",
            )
            yield field_row(
                "ack-timing",
                "Ack",
                RadioSet(
                    RadioButton("after work", value=after, compact=True),
                    RadioButton("before work", value=not after, id="ack-before", compact=True),
                    id="ack-timing",
                    compact=True,
                ),
                "before: a crash mid-task loses it",
            )
            yield field_row(
                "forget-ack",
                "Forget ack",
                Checkbox("on", settings.forget_ack, id="forget-ack", compact=True),
                "do the work, never ack: the classic mistake",
            )
            yield field_row(
                "seconds-per-dot",
                "Seconds per dot",
                Input(f"{self.seconds_per_dot:g}", id="seconds-per-dot", compact=True),
                "all workers, tasks started from now on",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Apply (Enter)", id="settings-apply", variant="primary", compact=True)
                yield Button("Cancel (Esc)", id="settings-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#prefetch", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "settings-apply":
            self.apply()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.apply()

    def apply(self) -> None:
        """Check every field; apply only when all are valid (a refusal changes nothing)."""
        self.begin_checks()
        prefetch = self.check("prefetch", lambda text: parse_int(text, "prefetch", 0, MAX_PREFETCH))
        seconds = self.check(
            "seconds-per-dot",
            lambda text: validate_seconds_per_dot(parse_float(text, "seconds per dot")),
        )
        if self.refused or prefetch is None or seconds is None:
            return
        before = self.query_one("#ack-before", RadioButton).value
        settings = WorkerSettings(
            prefetch=prefetch,
            auto_ack=self.query_one("#auto-ack", Checkbox).value,
            ack_timing=AckTiming.BEFORE_WORK if before else AckTiming.AFTER_WORK,
            forget_ack=self.query_one("#forget-ack", Checkbox).value,
        )
        every = self.query_one("#scope-all", RadioButton).value
        self.dismiss(SettingsChoice(None if every else self.worker, settings, seconds))

    def action_cancel(self) -> None:
        self.dismiss(None)
