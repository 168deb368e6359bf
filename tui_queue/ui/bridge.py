"""Engine events into the UI thread: collected on engine threads, handed over in batches.

The engine calls `EventBridge` on its own threads. Each event goes into an inbox. The first event
after a quiet spell posts a message to the app (`post_message`, Textual's thread-safe door), so a
lone event is on screen at once. Within `quiet` seconds of the last hand-over nothing is posted:
the app's refresh tick takes those, so a burst of events costs the engine threads an append
each, not a wake-up of the UI thread per event (each wake-up is a fight for the GIL). (In a
flood of messages the app takes no per-message events at all: see QueueLabApp._draw.)
The UI thread takes the inbox in slices, so input keeps its turn in the app's queue.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from textual.message import Message
from textual.message_pump import MessagePump

from tui_queue.engine import Event


class EngineEventsReady(Message):
    """Events wait in the bridge; the receiver calls `EventBridge.take`."""

    # One pending notice is as good as many: Textual may merge a new one into a queued one.
    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EngineEventsReady)


class EventBridge:
    def __init__(self, target: MessagePump, slice_size: int = 5_000, quiet: float = 0.1) -> None:
        self._target = target
        self._slice = slice_size
        self._quiet = quiet
        self._lock = threading.Lock()
        self._inbox: deque[Event] = deque()
        self._signalled = False
        self._quiet_until = 0.0
        self.received = 0  # UI thread only: events taken so far

    def __call__(self, event: Event) -> None:
        """Engine threads: keep the event; wake the UI thread unless it is woken already or
        its refresh tick comes by soon."""
        # deque.append is atomic: the common case takes no lock (engine threads are busy).
        self._inbox.append(event)
        if self._signalled or time.monotonic() < self._quiet_until:
            return
        with self._lock:
            if self._signalled:
                return
            self._signalled = True
        self._target.post_message(EngineEventsReady())

    def take(self) -> tuple[list[Event], bool]:
        """UI thread (a notice's handler, or the refresh tick): the next slice of events, and
        whether more are left after it (then the caller posts itself another EngineEventsReady,
        behind whatever input is waiting)."""
        with self._lock:
            self._signalled = False
            self._quiet_until = time.monotonic() + self._quiet
        # popleft, never a swap of the deque: an engine thread may be appending right now.
        inbox = self._inbox
        count = min(len(inbox), self._slice)
        events = [inbox.popleft() for _ in range(count)]
        self.received += count
        more = len(inbox) > 0
        if more:
            with self._lock:
                self._signalled = True  # our own follow-up notice stands for the inbox too
        return events, more
