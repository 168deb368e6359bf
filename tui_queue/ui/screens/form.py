"""What the dialogs share: one row per field (label, control, note), checked on Apply; a refusal
replaces the field's note, in red, and the dialog stays open with nothing applied."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Input, Label

from tui_queue.engine import SettingsError

T = TypeVar("T")
R = TypeVar("R")


def parse_int(text: str, what: str, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise SettingsError(f"{what} must be a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{what} must be between {low:,} and {high:,}")
    return value


def parse_float(text: str, what: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise SettingsError(f"{what} must be a number") from None


def field_row(field: str, label: str, control: Widget, note: str) -> Horizontal:
    """`#<field>-note` holds the note, or the refusal of what was typed."""
    return Horizontal(
        Label(label, classes="field-label"),
        control,
        FieldNote(note, id=f"{field}-note"),
        classes="field-row",
    )


class FieldNote(Label):
    def __init__(self, note: str, *, id: str) -> None:
        super().__init__(note, id=id, classes="field-note")
        self.note = note
        self.refusal = ""

    def refuse(self, refusal: str) -> None:
        self.refusal = refusal
        self.update(refusal or self.note)
        self.set_class(bool(refusal), "-refused")


class FormScreen(ModalScreen[R]):
    """A modal form; `check(field, parse)` reads the Input `#<field>` through `parse`."""

    def __init__(self) -> None:
        super().__init__()
        self._refused = False

    def begin_checks(self) -> None:
        self._refused = False

    def check(self, field: str, parse: Callable[[str], T]) -> T | None:
        note = self.query_one(f"#{field}-note", FieldNote)
        try:
            value = parse(self.query_one(f"#{field}", Input).value)
        except SettingsError as refusal:
            note.refuse(str(refusal))
            self._refused = True
            return None
        note.refuse("")
        return value

    @property
    def refused(self) -> bool:
        return self._refused

    def errors(self) -> dict[str, str]:
        """Field -> the refusal on screen (for tests and scripts)."""
        return {
            (note.id or "").removesuffix("-note"): note.refusal
            for note in self.query(FieldNote).results(FieldNote)
            if note.refusal
        }
