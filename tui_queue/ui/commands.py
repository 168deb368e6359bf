"""Blocking engine calls (purge, restart the broker, redeclare, remove a worker) off the UI thread.

One thread runs them in order; each result or error comes back through a callback on that
thread, which the app turns into a posted message. No Textual in here.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    label: str  # what was asked, for the person: "purge the queue"
    result: Any = None
    error: str | None = None  # one line; None when it worked


class CommandRunner:
    def __init__(self, on_outcome: Callable[[CommandOutcome], None]) -> None:
        self._on_outcome = on_outcome
        self._queue: queue.SimpleQueue[tuple[str, Callable[[], Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="tq-ui-commands", daemon=True)
        self._busy = threading.Event()
        self._stopping = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def submit(self, label: str, call: Callable[[], Any]) -> None:
        self._queue.put((label, call))

    @property
    def busy(self) -> bool:
        return self._busy.is_set() or not self._queue.empty()

    def stop(self) -> None:
        """Finish the command under way, drop the rest, join the thread."""
        self._stopping.set()
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._stopping.is_set():
                continue
            label, call = item
            self._busy.set()
            try:
                outcome = CommandOutcome(label, result=call())
            except Exception as error:  # reported to the person, never raised into the UI
                text = " ".join((str(error) or type(error).__name__).split())
                outcome = CommandOutcome(label, error=text)
            finally:
                self._busy.clear()
            self._on_outcome(outcome)
