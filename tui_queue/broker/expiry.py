"""Time in queues: one-shot timers on the event loop, and the x-expires lease of a queue.

Nothing here polls. A queue keeps at most one timer for its messages (the head's deadline) and
one for its lease; each is moved with `loop.call_at` when the deadline moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def loop_time() -> float:
    """The event loop's clock, which every deadline in the broker is measured on."""
    return asyncio.get_running_loop().time()


class Timer:
    """A callback due at one deadline (loop time); setting a new deadline replaces the old."""

    __slots__ = ("_callback", "_handle", "when")

    def __init__(self, callback: Callable[[float], None]) -> None:
        # Called with the deadline it was due at: the loop may run it a hair early.
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None
        self.when: float | None = None

    def set(self, when: float) -> None:
        self.cancel()
        self.when = when
        self._handle = asyncio.get_running_loop().call_at(when, self._fire, when)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.when = None

    def _fire(self, when: float) -> None:
        self._handle = None
        self.when = None
        self._callback(when)


class Lease:
    """x-expires: the queue is deleted once it has gone unused for `ms` milliseconds.

    Classic and quorum queues renew it on different events (the queue decides when to call
    `renew`); both count a queue as used while `in_use()` says so and never expire it then.
    """

    __slots__ = ("ms", "_in_use", "_expire", "_timer")

    def __init__(self, ms: int, in_use: Callable[[], bool], expire: Callable[[], None]) -> None:
        self.ms = ms
        self._in_use = in_use
        self._expire = expire
        self._timer = Timer(self._due)

    def renew(self) -> None:
        """Start the unused period again from now (RabbitMQ: ensure_expiry_timer, last_active)."""
        self._timer.set(loop_time() + self.ms / 1000)

    def cancel(self) -> None:
        self._timer.cancel()

    def _due(self, _when: float) -> None:
        # A queue in use keeps living; it renews when it stops being used.
        if not self._in_use():
            self._expire()
