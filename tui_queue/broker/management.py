"""A read-only subset of RabbitMQ's management HTTP API, with RabbitMQ's JSON field names.

GET /api/overview, /api/queues, /api/queues/{vhost} and /api/queues/{vhost}/{name}, with HTTP
basic auth. One client then reads queue stats from the embedded broker and RabbitMQ alike.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from tui_queue.broker.codec import Typed
from tui_queue.broker.queues import Queue, QueueStats

if TYPE_CHECKING:
    from tui_queue.broker.server import Broker

SAMPLE_INTERVAL = 1.0
# RabbitMQ reports rates over its last few samples; five seconds here.
RATE_WINDOW = 5
MAX_REQUEST_HEAD = 16 * 1024
_COUNTERS: tuple[str, ...] = tuple(QueueStats.__slots__)
# RabbitMQ reports a queue's counters in two groups, each only once something has touched it:
# what was published into the queue, and what channels took from it (deliveries, gets, acks).
# A queue nothing happened to has no message_stats at all.
_DELIVERY_COUNTERS = _COUNTERS[1:]
AUTH_REALM = 'Basic realm="RabbitMQ Management"'


class ManagementServer:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.server: asyncio.Server | None = None
        self.samples: dict[int, deque[tuple[float, tuple[int, ...]]]] = {}
        self._sampler: asyncio.Task[None] | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.start_server(self._client, host, port, reuse_address=True)
        self._sampler = asyncio.get_running_loop().create_task(self._sample_forever())
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        if self.server is not None:
            self.server.close()
            for task in list(self._clients):
                task.cancel()
            await self.server.wait_closed()

    # ------------------------------------------------------------------ rates

    async def _sample_forever(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(SAMPLE_INTERVAL)

    def _sample(self) -> None:
        now = time.monotonic()
        live = {}
        for queue in self.broker.vhost.queues.values():
            key = id(queue)
            live[key] = True
            history = self.samples.setdefault(key, deque(maxlen=RATE_WINDOW + 1))
            history.append((now, self._counters(queue)))
        for key in [k for k in self.samples if k not in live]:
            del self.samples[key]

    @staticmethod
    def _counters(queue: Queue) -> tuple[int, ...]:
        stats = queue.stats
        return tuple(getattr(stats, name) for name in _COUNTERS)

    def _rates(self, queue: Queue) -> dict[str, float]:
        history = self.samples.get(id(queue))
        if not history or len(history) < 2:
            return dict.fromkeys(_COUNTERS, 0.0)
        (t0, first), (t1, last) = history[0], history[-1]
        elapsed = max(t1 - t0, 1e-6)
        return {
            name: round((b - a) / elapsed, 1)
            for name, a, b in zip(_COUNTERS, first, last, strict=True)
        }

    # ------------------------------------------------------------------ documents

    def queue_document(self, queue: Queue) -> dict[str, Any]:
        stats = queue.stats
        rates = self._rates(queue)
        ready = len(queue.ready)
        deliver_get = stats.deliver + stats.deliver_no_ack + stats.get + stats.get_no_ack
        deliver_get_rate = (
            rates["deliver"] + rates["deliver_no_ack"] + rates["get"] + rates["get_no_ack"]
        )

        def counter(name: str, value: int, rate: float) -> dict[str, Any]:
            return {name: value, f"{name}_details": {"rate": rate}}

        message_stats: dict[str, Any] = {}
        if stats.publish:
            message_stats.update(counter("publish", stats.publish, rates["publish"]))
        if any(getattr(stats, name) for name in _DELIVERY_COUNTERS):
            for name in _DELIVERY_COUNTERS:
                message_stats.update(counter(name, getattr(stats, name), rates[name]))
            message_stats.update(counter("deliver_get", deliver_get, round(deliver_get_rate, 1)))
        exclusive_tag = next((c.tag for c in queue.consumers.values() if c.exclusive), "")
        document = {
            "name": queue.name,
            "vhost": self.broker.vhost.name,
            "type": queue.queue_type,
            "durable": queue.durable,
            "auto_delete": queue.auto_delete,
            "exclusive": queue.exclusive_owner is not None,
            "arguments": {k: _json_value(v) for k, v in queue.arguments.items()},
            "state": "running",
            "node": "tui-queue@localhost",
            "consumers": queue.listed_consumer_count,
            "exclusive_consumer_tag": exclusive_tag or None,
            "messages": ready + queue.unacked,
            "messages_ready": ready,
            "messages_unacknowledged": queue.unacked,
            "message_bytes_ready": queue.ready_bytes,
        }
        if message_stats:
            document["message_stats"] = message_stats
        return document

    def overview_document(self) -> dict[str, Any]:
        queues = list(self.broker.vhost.queues.values())
        ready = sum(len(q.ready) for q in queues)
        unacked = sum(q.unacked for q in queues)
        channels = sum(len(c.channels) for c in self.broker.connections)
        return {
            "management_version": "3.10.8",
            "rabbitmq_version": "3.10.8",
            "product_name": "tui-queue embedded broker",
            "product_version": "3.10.8",
            "cluster_name": "tui-queue@localhost",
            "node": "tui-queue@localhost",
            "queue_totals": {
                "messages": ready + unacked,
                "messages_ready": ready,
                "messages_unacknowledged": unacked,
            },
            "object_totals": {
                "connections": len(self.broker.connections),
                "channels": channels,
                "queues": len(queues),
                "exchanges": len(self.broker.vhost.exchanges),
                "consumers": sum(q.listed_consumer_count for q in queues),
            },
            "listeners": [
                {"node": "tui-queue@localhost", "protocol": "amqp", "port": self.broker.port}
            ],
        }

    # ------------------------------------------------------------------ http

    def _authorised(self, headers: dict[str, str]) -> bool:
        value = headers.get("authorization", "")
        if not value.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        except ValueError:
            return False
        config = self.broker.config
        return user == config.user and password == config.password

    def _route(self, path: str) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.split("?")[0].strip("/").split("/")]
        vhost = self.broker.vhost
        if parts == ["api", "overview"]:
            return 200, self.overview_document()
        if parts[:2] == ["api", "queues"]:
            if len(parts) == 2 or (len(parts) == 3 and parts[2] == vhost.name):
                return 200, [self.queue_document(q) for q in vhost.queues.values()]
            if len(parts) == 4 and parts[2] == vhost.name:
                queue = vhost.queues.get(parts[3])
                if queue is not None:
                    return 200, self.queue_document(queue)
            return 404, {"error": "Object Not Found", "reason": "Not Found"}
        return 404, {"error": "Object Not Found", "reason": "Not Found"}

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                if len(head) > MAX_REQUEST_HEAD:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, _, rest = lines[0].partition(" ")
                path = rest.rsplit(" ", 1)[0]
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(min(length, MAX_REQUEST_HEAD))
                extra = ""
                document: Any = None
                if method != "GET":
                    status, document = 405, {"error": "Method Not Allowed", "reason": method}
                elif "authorization" not in headers:
                    # RabbitMQ asks for credentials with an empty 401.
                    status, extra = 401, f"www-authenticate: {AUTH_REALM}\r\n"
                elif not self._authorised(headers):
                    status, document = 401, {"error": "not_authorized", "reason": "Login failed"}
                    extra = f"www-authenticate: {AUTH_REALM}\r\n"
                else:
                    status, document = self._route(path)
                body = b""
                if document is not None:
                    body = json.dumps(document).encode()
                    extra += "content-type: application/json\r\n"
                reason = {200: "OK", 401: "Unauthorized", 404: "Not Found"}.get(status, "Error")
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\n{extra}"
                    f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._clients.discard(task)
            writer.close()


def _json_value(typed: Typed) -> Any:
    """A field-table value as RabbitMQ's management API renders it (rabbit_misc:amqp_value)."""
    value = typed.value
    if typed.type == "table":
        return {k: _json_value(v) for k, v in value.items()}
    if typed.type == "array":
        return [_json_value(v) for v in value]
    if typed.type == "decimal":
        # RabbitMQ formats {Scale, Value} as "Scale.Value" and reads that back as a float:
        # scale 2, value 125 (1.25) comes out as 2.125.
        scale = max(0, -int(value.as_tuple().exponent))
        digits = int(value.scaleb(scale))
        # A negative value does not fit that format (RabbitMQ fails on it); report the number.
        return float(f"{scale}.{digits}") if digits >= 0 else float(value)
    if typed.type == "void":
        return "undefined"
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            encoded = base64.b64encode(value).decode()
            lines = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
            return f"Not UTF-8, base64 is: {lines}"
    return value
