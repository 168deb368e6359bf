"""Commands into a thread that owns a pika connection, without touching that connection.

Any thread may `put`; only the owner thread reads. A command goes into a thread-safe queue, then
the owner is woken: through `add_callback_threadsafe` on its connection (pika's only thread-safe
method) when it is blocked in `process_data_events`, or by the queue itself when it has no
connection and waits in `wait_without_connection`.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator
from typing import Generic, TypeVar

import pika.exceptions
from pika.adapters.blocking_connection import BlockingConnection

T = TypeVar("T")


def _wake() -> None:
    """Does nothing: being called is what ends the owner's process_data_events."""


class Mailbox(Generic[T]):
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[T] = queue.SimpleQueue()
        self._connection: BlockingConnection | None = None

    def attach(self, connection: BlockingConnection | None) -> None:
        """Owner thread: the connection to wake from now on. Drain afterwards: a command put
        before this attach may have tried to wake the previous connection (or none)."""
        self._connection = connection

    def put(self, command: T) -> None:
        self._queue.put(command)
        connection = self._connection
        if connection is None:
            return
        # Closed or closing: the owner is about to notice and will drain the queue anyway.
        with contextlib.suppress(pika.exceptions.AMQPError, OSError, AttributeError):
            connection.add_callback_threadsafe(_wake)

    def drain(self) -> Iterator[T]:
        """Owner thread: every command waiting now, oldest first."""
        while True:
            try:
                yield self._queue.get_nowait()
            except queue.Empty:
                return

    def wait_without_connection(self, timeout: float | None) -> T | None:
        """Owner thread, while it has no connection: the next command, or None at the timeout."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def empty(self) -> bool:
        return self._queue.empty()
