"""Queue numbers from the broker: the management HTTP API, or passive declare when there is none.

The embedded broker and RabbitMQ's management plugin serve the same JSON (`/api/queues/{vhost}/
{name}`: messages_ready, messages_unacknowledged, consumers, message_stats.*_details.rate), so one
client reads both. Against a RabbitMQ without the plugin, ready and consumers come from queue.
declare(passive=True) on the poller's own connection, unacked from the ledger (what our workers
hold) and rates from the ledger's counters; every sample says which source it came from.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pika.exceptions
from pika.adapters.blocking_connection import BlockingConnection

from tui_queue.engine.config import QueueSpec
from tui_queue.engine.connect import LINK_ERRORS, connect, one_line, url_parts
from tui_queue.engine.events import EventBus, StatsUpdated
from tui_queue.engine.ledger import Ledger
from tui_queue.engine.mailbox import MailboxThread

log = logging.getLogger(__name__)

# While on the fallback, try the management API again this often.
MANAGEMENT_RETRY = 10.0


class StatsSource(StrEnum):
    MANAGEMENT = "management API"
    PASSIVE_DECLARE = "passive declare + ledger"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    ready: int | None
    unacked: int | None
    consumers: int | None
    publish_rate: float | None  # messages per second
    deliver_rate: float | None
    ack_rate: float | None
    queue_type: str | None
    durable: bool | None
    source: StatsSource
    detail: str  # why this source (e.g. why the management API was not used), or the error
    at: float  # time.monotonic() of the sample

    @property
    def available(self) -> bool:
        return self.source is not StatsSource.UNAVAILABLE

    @classmethod
    def unavailable(cls, queue: str, at: float, detail: str) -> QueueStats:
        """A sample without numbers, saying why."""
        return cls(
            queue=queue,
            ready=None,
            unacked=None,
            consumers=None,
            publish_rate=None,
            deliver_rate=None,
            ack_rate=None,
            queue_type=None,
            durable=None,
            source=StatsSource.UNAVAILABLE,
            detail=detail,
            at=at,
        )


class ManagementError(Exception):
    pass


class QueueMissing(ManagementError):
    pass


def default_management_url(amqp_url: str) -> str:
    host = url_parts(amqp_url)[0]
    return f"http://{host}:15672"


class ManagementClient:
    """GET-only client for the management API subset; one request at a time, any thread."""

    def __init__(self, base_url: str, user: str, password: str, timeout: float = 1.0) -> None:
        self.base_url = base_url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._auth = f"Basic {token}"
        self._timeout = timeout

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.base_url + path)
        request.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code == 404:
                raise QueueMissing(f"{path}: not found") from None
            raise ManagementError(f"HTTP {error.code} from {self.base_url}") from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise ManagementError(f"no management API at {self.base_url} ({reason})") from None

    def overview(self) -> dict[str, Any]:
        return dict(self.get("/api/overview"))

    def queue(self, vhost: str, name: str) -> dict[str, Any]:
        path = (
            f"/api/queues/{urllib.parse.quote(vhost, safe='')}/{urllib.parse.quote(name, safe='')}"
        )
        return dict(self.get(path))


def _rate(stats: dict[str, Any], key: str) -> float:
    details = stats.get(f"{key}_details")
    if isinstance(details, dict):
        value = details.get("rate", 0.0)
        if isinstance(value, int | float):
            return float(value)
    return 0.0


def parse_queue(document: dict[str, Any], queue: str, at: float) -> QueueStats:
    """QueueStats from a /api/queues/{vhost}/{name} document (fields may be missing early on)."""
    message_stats = document.get("message_stats") or {}
    durable = document.get("durable")
    return QueueStats(
        queue=queue,
        ready=int(document.get("messages_ready") or 0),
        unacked=int(document.get("messages_unacknowledged") or 0),
        consumers=int(document.get("consumers") or 0),
        publish_rate=_rate(message_stats, "publish"),
        deliver_rate=_rate(message_stats, "deliver_get"),
        ack_rate=_rate(message_stats, "ack"),
        queue_type=document.get("type"),
        durable=bool(durable) if durable is not None else None,
        source=StatsSource.MANAGEMENT,
        detail="",
        at=at,
    )


class _LedgerRates:
    """Publish/deliver/ack rates from the ledger's counters, for the fallback."""

    def __init__(self) -> None:
        self._last: tuple[float, int, int, int] | None = None

    def sample(self, at: float, published: int, delivered: int, acked: int) -> tuple[float, ...]:
        last, self._last = self._last, (at, published, delivered, acked)
        if last is None or at <= last[0]:
            return (0.0, 0.0, 0.0)
        span = at - last[0]
        return (
            (published - last[1]) / span,
            (delivered - last[2]) / span,
            (acked - last[3]) / span,
        )


class StatsPoller(MailboxThread):
    """A thread that samples the queue every `interval` seconds and emits StatsUpdated."""

    def __init__(
        self,
        url: str,
        management_url: str | None,
        queue: Callable[[], QueueSpec],
        ledger: Ledger,
        bus: EventBus,
        interval: float = 0.25,
        connection_name: str = "tui-queue",
    ) -> None:
        super().__init__("tq-stats")
        self._url = url
        _host, _port, vhost, user, password = url_parts(url)
        self._vhost = vhost
        self._management = ManagementClient(
            management_url or default_management_url(url), user, password
        )
        self._queue_spec = queue
        self._ledger = ledger
        self._bus = bus
        self._interval = interval
        self._name = f"{connection_name} stats"
        self._conn: BlockingConnection | None = None
        self._use_management = True
        self._management_retry_at = 0.0
        self._fallback_reason = ""
        self._rates = _LedgerRates()
        self._latest_lock = threading.Lock()
        self._latest: QueueStats | None = None

    def latest(self) -> QueueStats | None:
        with self._latest_lock:
            return self._latest

    def poke(self) -> None:
        """Sample now instead of at the next tick (after a purge, a kill...)."""
        self._mailbox.put(lambda: None)

    def _run(self) -> None:
        try:
            while not self._stopping:
                stats = self.sample()
                with self._latest_lock:
                    self._latest = stats
                self._bus.emit(
                    StatsUpdated(
                        queue=stats,
                        totals=self._ledger.totals(),
                        workers=self._ledger.all_worker_counts(),
                    )
                )
                self._wait(self._interval)
        finally:
            self._close_connection()

    def _wait(self, seconds: float) -> None:
        """Sleep until the next tick or a command; with a connection, keep its heartbeats."""
        deadline = time.monotonic() + seconds
        while not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            conn = self._conn
            if conn is not None and conn.is_open:
                try:
                    conn.process_data_events(time_limit=remaining)
                except LINK_ERRORS:
                    self._close_connection()
                ran = False
                for command in self._mailbox.drain():
                    command()
                    ran = True
                if ran:
                    return
            else:
                command = self._mailbox.wait_without_connection(remaining)
                if command is not None:
                    command()
                    return

    def sample(self) -> QueueStats:
        """One reading (poller thread only: the fallback uses the poller's connection)."""
        now = time.monotonic()
        queue = self._queue_spec().name
        try:
            return self._read(queue, now)
        except Exception as error:  # a fault of ours or an odd answer: this sample is lost
            log.exception("stats sample failed")
            return QueueStats.unavailable(queue, now, f"stats failed: {one_line(error)}")

    def _read(self, queue: str, now: float) -> QueueStats:
        if not self._use_management and now >= self._management_retry_at:
            self._use_management = True
        if self._use_management:
            try:
                document = self._management.queue(self._vhost, queue)
                self._close_connection()  # the fallback's connection is not needed any more
                return parse_queue(document, queue, now)
            except QueueMissing:
                return QueueStats.unavailable(queue, now, f"queue {queue!r} does not exist")
            except ManagementError as error:
                self._use_management = False
                self._management_retry_at = now + MANAGEMENT_RETRY
                self._fallback_reason = str(error)
        return self._passive(queue, now)

    def _passive(self, queue: str, now: float) -> QueueStats:
        try:
            if self._conn is None or not self._conn.is_open:
                self._conn = connect(self._url, name=self._name)
                self._mailbox.attach(self._conn)
            channel = self._conn.channel()
            try:
                frame = channel.queue_declare(queue, passive=True)
            finally:
                if channel.is_open:
                    channel.close()
        except pika.exceptions.ChannelClosedByBroker as error:
            if error.reply_code == 404:
                return QueueStats.unavailable(queue, now, f"queue {queue!r} does not exist")
            return QueueStats.unavailable(queue, now, one_line(error))
        except LINK_ERRORS as error:
            self._close_connection()
            return QueueStats.unavailable(queue, now, f"broker unreachable: {one_line(error)}")
        totals = self._ledger.totals()
        publish, deliver, ack = self._rates.sample(
            now, totals.published, totals.delivered, totals.acked
        )
        return QueueStats(
            queue=queue,
            ready=int(frame.method.message_count),
            unacked=self._ledger.unacked_count(),
            consumers=int(frame.method.consumer_count),
            publish_rate=publish,
            deliver_rate=deliver,
            ack_rate=ack,
            queue_type=None,
            durable=None,
            source=StatsSource.PASSIVE_DECLARE,
            detail=f"{self._fallback_reason}; unacked and rates from the ledger",
            at=now,
        )

    def _close_connection(self) -> None:
        self._mailbox.attach(None)
        conn, self._conn = self._conn, None
        if conn is not None and conn.is_open:
            with contextlib.suppress(*LINK_ERRORS):
                conn.close()
