"""Commands into a thread that owns a pika connection, without touching that connection.

Any thread may `put`; only the owner thread reads. A command goes into a thread-safe queue, then
the owner is woken: through `add_callback_threadsafe` on its connection (pika's only thread-safe
method) when it is blocked in `process_data_events`, or by the queue itself when it has no
connection and waits in `wait_without_connection`.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
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


Command = Callable[[], None]


class MailboxThread:
    """A thread that owns one pika connection and takes its commands from a Mailbox: the worker,
    the publisher and the stats poller. Subclasses write `_run`, which ends once `_stopping`."""

    def __init__(self, thread_name: str) -> None:
        self._mailbox: Mailbox[Command] = Mailbox()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to finish (see _cmd_stop) and end; returns at once."""
        self._mailbox.put(self._cmd_stop)

    def stop(self, timeout: float = 10.0) -> bool:
        """request_stop() and join; True if the thread has ended (or never started)."""
        if self._thread.is_alive():
            self.request_stop()
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _cmd_stop(self) -> None:
        self._stopping = True

    def _run(self) -> None:
        raise NotImplementedError
