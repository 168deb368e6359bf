"""Messages that threads post to the app: the session came up (or could not), a command ended."""

from __future__ import annotations

from textual.message import Message

from tui_queue.engine import EngineInfo
from tui_queue.ui.commands import CommandOutcome


class SessionReady(Message):
    def __init__(self, info: EngineInfo) -> None:
        super().__init__()
        self.info = info


class SessionFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class CommandFinished(Message):
    def __init__(self, outcome: CommandOutcome) -> None:
        super().__init__()
        self.outcome = outcome
