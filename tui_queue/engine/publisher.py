"""Tasks in: the tutorial's new_task.py as a thread with its own connection.

`publish` checks bodies on the caller's thread (an oversized one never reaches the wire) and queues
them; the publisher thread sends them persistent (delivery_mode 2) or transient, each with a
message id the ledger follows. The same thread does the other queue chores (purge, redeclare),
so the engine needs no further connection for them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tui_queue.engine.config import MAX_BODY_BYTES, QueueSpec, SettingsError
from tui_queue.engine.connect import LINK_ERRORS, connect, declare_queue, one_line
from tui_queue.engine.events import EngineError, EventBus, MessagePublished, PublishOutcome
from tui_queue.engine.ledger import Ledger
from tui_queue.engine.mailbox import Command, MailboxThread
from tui_queue.engine.pika_compat import sever
from tui_queue.engine.tasks import preview

log = logging.getLogger(__name__)


class TaskTooLarge(SettingsError):
    """A body over the broker's message size limit; refused before it is sent."""


@dataclass(frozen=True, slots=True)
class Published:
    message_id: str | None
    seq: int | None
    outcome: PublishOutcome
    detail: str = ""


class PublishTicket:
    """The outcome of one publish call, filled in by the publisher thread."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._results: list[Published] = []
        self._done = threading.Event()

    def _add(self, item: Published) -> None:
        self._results.append(item)
        if len(self._results) == self.count:
            self._done.set()

    def wait(self, timeout: float | None = None) -> list[Published]:
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self.count - len(self._results)} tasks still unsent")
        return list(self._results)

    @property
    def done(self) -> bool:
        return self._done.is_set()


def encode_bodies(bodies: Sequence[str | bytes], limit: int = MAX_BODY_BYTES) -> list[bytes]:
    encoded = [body.encode() if isinstance(body, str) else bytes(body) for body in bodies]
    for body in encoded:
        if len(body) > limit:
            raise TaskTooLarge(
                f"task of {len(body):,} bytes is over the broker's limit of {limit:,} bytes"
            )
    return encoded


R = TypeVar("R")


class Publisher(MailboxThread):
    def __init__(
        self,
        url: str,
        queue: Callable[[], QueueSpec],
        ledger: Ledger,
        bus: EventBus,
        confirms: bool = False,
        max_body_bytes: int = MAX_BODY_BYTES,
        heartbeat: int | None = None,
        connection_name: str = "tui-queue",
    ) -> None:
        super().__init__("tq-publisher")
        self._url = url
        self._queue_spec = queue
        self._ledger = ledger
        self._bus = bus
        self._confirms = confirms
        self._max_body = max_body_bytes
        self._heartbeat = heartbeat
        self._name = f"{connection_name} publisher"
        self._conn: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._last_error = ""
        self._declared: QueueSpec | None = None

    # --- any thread (and start(), stop(), alive: see MailboxThread) ----------------------------

    def publish(self, bodies: Sequence[str | bytes], persistent: bool = True) -> PublishTicket:
        """Queue tasks for sending; raises TaskTooLarge (nothing is sent) if one is too big."""
        encoded = encode_bodies(bodies, self._max_body)
        ticket = PublishTicket(len(encoded))
        if encoded:
            self._mailbox.put(lambda: self._send(encoded, persistent, ticket))
        return ticket

    def purge(self) -> Future[int]:
        """queue.purge: removes ready messages only; the future holds the broker's count."""
        name = self._queue_spec().name
        return self._call(lambda channel: int(channel.queue_purge(name).method.message_count))

    def delete_queue(self, name: str | None = None) -> Future[int]:
        target = name or self._queue_spec().name
        return self._call(lambda channel: int(channel.queue_delete(target).method.message_count))

    def declare(self, spec: QueueSpec | None = None) -> Future[int]:
        return self._call(lambda channel: declare_queue(channel, spec or self._queue_spec()))

    def passive_declare(self) -> Future[tuple[int, int]]:
        """(ready, consumers) straight from queue.declare-ok."""

        def run(channel: BlockingChannel) -> tuple[int, int]:
            frame = channel.queue_declare(self._queue_spec().name, passive=True)
            return int(frame.method.message_count), int(frame.method.consumer_count)

        return self._call(run)

    def _call(self, action: Callable[[BlockingChannel], R]) -> Future[R]:
        future: Future[R] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                channel = self._ensure_channel()
                future.set_result(action(channel))
            except pika.exceptions.ChannelClosedByBroker as error:
                # A refused declare/purge closes only the channel; report it, reopen next time.
                self._channel = None
                future.set_exception(error)
            except LINK_ERRORS as error:
                self._drop_connection()
                future.set_exception(error)
            except Exception as error:  # not the broker: the caller hears of it all the same
                future.set_exception(error)
                raise

        self._mailbox.put(run)
        return future

    # --- publisher thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping:
                conn = self._conn
                if conn is None or conn.is_closed:
                    command = self._mailbox.wait_without_connection(None)
                    if command is not None:
                        self._run_command(command)
                    continue
                # Commands queued while the connection was being opened could not wake it:
                # run them before blocking on it.
                for command in self._mailbox.drain():
                    self._run_command(command)
                    if self._stopping:
                        break
                if self._stopping or self._conn is not conn:
                    continue
                try:
                    conn.process_data_events(time_limit=None)
                except LINK_ERRORS:
                    self._drop_connection()
        finally:
            self._drop_connection()

    def _run_command(self, command: Command) -> None:
        try:
            command()
        except Exception as error:  # a fault of ours, not the broker's: report it, keep going
            log.exception("publisher command failed")
            self._drop_connection()
            self._report(f"publisher failed: {one_line(error)}")

    def _ensure_channel(self) -> BlockingChannel:
        if self._conn is None or self._conn.is_closed:
            self._conn = connect(self._url, heartbeat=self._heartbeat, name=self._name)
            self._mailbox.attach(self._conn)
            self._channel = None
        if self._channel is None or self._channel.is_closed:
            channel = self._conn.channel()
            if self._confirms:
                channel.confirm_delivery()
            self._channel = channel
            self._declared = None
        return self._channel

    def _publishing_channel(self) -> BlockingChannel:
        """A channel on which the current queue spec is declared (new_task.py declares before
        publishing, so a task never goes to a queue that does not exist)."""
        channel = self._ensure_channel()
        spec = self._queue_spec()
        if self._declared != spec:
            declare_queue(channel, spec)
            self._declared = spec
        return channel

    def _drop_connection(self) -> None:
        self._mailbox.attach(None)
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None and not conn.is_closed:
            try:
                conn.close()
            except LINK_ERRORS:
                sever(conn)

    def _report(self, message: str) -> None:
        # One error event per distinct problem, not one per message of a batch.
        if message != self._last_error:
            self._last_error = message
            self._bus.emit(EngineError(where="publisher", message=message))

    def _send(self, bodies: list[bytes], persistent: bool, ticket: PublishTicket) -> None:
        properties_mode = 2 if persistent else 1
        queue = self._queue_spec().name
        bus = self._bus
        for index, body in enumerate(bodies):
            try:
                channel = self._publishing_channel()
            except LINK_ERRORS as error:
                self._drop_connection()
                detail = one_line(error)
                self._report(f"cannot publish: {detail}")
                for rest in bodies[index:]:
                    self._outcome(
                        ticket, None, None, rest, persistent, PublishOutcome.FAILED, detail
                    )
                return
            # Counted before it is sent, so a fast worker never finds a message the books lack.
            seq, message_id = self._ledger.reserve(persistent)
            properties = pika.BasicProperties(delivery_mode=properties_mode, message_id=message_id)
            outcome = PublishOutcome.CONFIRMED if self._confirms else PublishOutcome.SENT
            detail = ""
            try:
                channel.basic_publish(
                    exchange="",
                    routing_key=queue,
                    body=body,
                    properties=properties,
                    mandatory=self._confirms,
                )
            except pika.exceptions.UnroutableError:
                outcome, detail = PublishOutcome.RETURNED, "unroutable: no queue took it"
                self._report(f"publish returned: {detail}")
            except pika.exceptions.NackError:
                outcome, detail = PublishOutcome.NACKED, "the broker refused it (basic.nack)"
                self._report(f"publish nacked: {detail}")
            except LINK_ERRORS as error:
                self._drop_connection()
                outcome, detail = PublishOutcome.FAILED, one_line(error)
                self._report(f"cannot publish: {detail}")
            else:
                self._last_error = ""
            if outcome in (PublishOutcome.RETURNED, PublishOutcome.NACKED, PublishOutcome.FAILED):
                self._ledger.unsent(seq)
            # Asked per message: a dashboard in a flood stops wanting them mid-batch.
            wanted = bus.wants(MessagePublished)
            if wanted or outcome not in (PublishOutcome.SENT, PublishOutcome.CONFIRMED):
                self._outcome(ticket, message_id, seq, body, persistent, outcome, detail)
            else:
                ticket._add(Published(message_id, seq, outcome))

    def _outcome(
        self,
        ticket: PublishTicket,
        message_id: str | None,
        seq: int | None,
        body: bytes,
        persistent: bool,
        outcome: PublishOutcome,
        detail: str,
    ) -> None:
        ticket._add(Published(message_id, seq, outcome, detail))
        self._bus.emit(
            MessagePublished(
                message_id=message_id,
                seq=seq,
                body=preview(body),
                size=len(body),
                persistent=persistent,
                outcome=outcome,
                detail=detail,
            )
        )
