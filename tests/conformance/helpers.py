"""Small helpers shared by the conformance tests (pika side and raw side)."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions
import pytest
from pamqp import commands
from pika.adapters.blocking_connection import BlockingChannel

from tests.support.raw_amqp import Closing, RawAMQPClient

QUEUE_TYPES = ["classic", "quorum"]


@dataclass
class BrokerHandle:
    """What a conformance test may know about the broker under test."""

    name: str
    host: str
    port: int
    management_url: str | None
    #: Yields (host, port) of a listener reached through a non-loopback local address, or skips.
    nonloopback: Callable[[], AbstractContextManager[tuple[str, int]]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.host}:{self.port}/%2F"

    def params(self, **overrides: Any) -> pika.URLParameters:
        parameters = pika.URLParameters(self.url)
        parameters.blocked_connection_timeout = None
        parameters.connection_attempts = 1
        parameters.socket_timeout = 5
        for key, value in overrides.items():
            setattr(parameters, key, value)
        return parameters

    def connect(self, **overrides: Any) -> pika.BlockingConnection:
        return pika.BlockingConnection(self.params(**overrides))

    def raw(self, timeout: float = 5.0) -> RawAMQPClient:
        return RawAMQPClient(self.host, self.port, timeout=timeout).connect()


def unique(prefix: str = "q") -> str:
    return f"tq-{prefix}-{uuid.uuid4().hex[:10]}"


def queue_args(queue_type: str) -> dict[str, Any]:
    return {"x-queue-type": queue_type}


@contextmanager
def connection(broker: BrokerHandle, **overrides: Any) -> Iterator[pika.BlockingConnection]:
    conn = broker.connect(**overrides)
    try:
        yield conn
    finally:
        if conn.is_open:
            with suppress(pika.exceptions.AMQPError):
                conn.close()


@contextmanager
def raw_client(broker: BrokerHandle, timeout: float = 5.0) -> Iterator[RawAMQPClient]:
    client = broker.raw(timeout)
    try:
        yield client
    finally:
        client.close()


@contextmanager
def temp_queue(
    broker: BrokerHandle, queue_type: str = "classic", *, prefix: str = "q"
) -> Iterator[str]:
    """A durable queue of the given type with a unique name, deleted afterwards."""
    name = unique(prefix)
    with connection(broker) as conn:
        conn.channel().queue_declare(name, durable=True, arguments=queue_args(queue_type))
    try:
        yield name
    finally:
        delete_queue(broker, name)


def delete_queue(broker: BrokerHandle, name: str) -> None:
    with connection(broker) as conn:
        conn.channel().queue_delete(name)


def delete_exchange(broker: BrokerHandle, name: str) -> None:
    with connection(broker) as conn:
        conn.channel().exchange_delete(name)


def publish_confirmed(
    channel: BlockingChannel,
    queue: str,
    bodies: list[str],
    *,
    exchange: str = "",
    properties: pika.BasicProperties | None = None,
) -> None:
    """Publish on a channel in confirm mode so that every message is enqueued on return."""
    channel.confirm_delivery()
    for body in bodies:
        channel.basic_publish(exchange, queue, body.encode(), properties)


def publish(broker: BrokerHandle, queue: str, bodies: list[str]) -> None:
    with connection(broker) as conn:
        publish_confirmed(conn.channel(), queue, bodies)


@dataclass
class Got:
    body: str
    redelivered: bool
    delivery_tag: int
    headers: dict[str, Any] | None
    message_count: int | None = None
    consumer_tag: str | None = None


def basic_get(channel: BlockingChannel, queue: str, *, auto_ack: bool = False) -> Got | None:
    method, properties, body = channel.basic_get(queue, auto_ack=auto_ack)
    if method is None:
        return None
    return Got(
        body.decode(),
        method.redelivered,
        method.delivery_tag,
        properties.headers,
        message_count=method.message_count,
    )


def get_all(channel: BlockingChannel, queue: str, *, auto_ack: bool = True) -> list[Got]:
    result = []
    while (got := basic_get(channel, queue, auto_ack=auto_ack)) is not None:
        result.append(got)
    return result


def bodies(messages: list[Got]) -> list[str]:
    return [m.body for m in messages]


def counts(
    broker: BrokerHandle,
    queue: str,
    wait_for: tuple[int, int] | None = None,
    timeout: float = 3.0,
) -> tuple[int, int]:
    """(message_count, consumer_count) from a passive declare on a fresh connection.

    With `wait_for`, declare again (pausing in pika's event loop) until the broker reports those
    counts or the time runs out: acks, drops and quorum bookkeeping settle asynchronously.
    """
    with connection(broker) as conn:
        deadline = time.monotonic() + timeout
        while True:
            channel = conn.channel()
            ok = channel.queue_declare(queue, passive=True)
            channel.close()
            result = (ok.method.message_count, ok.method.consumer_count)
            if wait_for is None or result == wait_for or time.monotonic() >= deadline:
                return result
            conn.process_data_events(time_limit=0.05)


@dataclass
class Consumer:
    """A pika consumer that records its deliveries (single-threaded, driven by `pump`)."""

    conn: pika.BlockingConnection
    channel: BlockingChannel
    received: list[Got] = field(default_factory=list)
    tag: str = ""
    cancelled_by_broker: list[str] = field(default_factory=list)

    def on_message(
        self,
        _channel: BlockingChannel,
        method: Any,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        self.received.append(
            Got(
                body.decode(),
                method.redelivered,
                method.delivery_tag,
                properties.headers,
                consumer_tag=method.consumer_tag,
            )
        )

    def start(self, queue: str, *, auto_ack: bool = False, **kwargs: Any) -> Consumer:
        self.tag = self.channel.basic_consume(queue, self.on_message, auto_ack=auto_ack, **kwargs)
        return self

    @property
    def bodies(self) -> list[str]:
        return [m.body for m in self.received]


def make_consumer(conn: pika.BlockingConnection, prefetch: int | None = None) -> Consumer:
    channel = conn.channel()
    if prefetch is not None:
        channel.basic_qos(prefetch_count=prefetch)
    consumer = Consumer(conn, channel)
    channel.add_on_cancel_callback(lambda frame: consumer.cancelled_by_broker.append(frame))
    return consumer


def pump(
    connections: list[pika.BlockingConnection],
    until: Callable[[], bool],
    timeout: float = 3.0,
) -> bool:
    """Drive pika I/O on each connection until `until()` holds or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        if until():
            return True
        if time.monotonic() >= deadline:
            return until()
        for conn in connections:
            conn.process_data_events(time_limit=0.02)


def settle(connections: list[pika.BlockingConnection], duration: float = 0.3) -> None:
    """Let pending frames arrive (used to check that nothing *more* arrives)."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        for conn in connections:
            conn.process_data_events(time_limit=0.02)


def channel_error(exc_info: pytest.ExceptionInfo[Any]) -> tuple[int, str]:
    value = exc_info.value
    return value.reply_code, value.reply_text


# -- raw-client conversations -----------------------------------------------------------------


def raw_ready(
    broker: BrokerHandle, channels: int = 1, timeout: float = 5.0, **handshake: Any
) -> RawAMQPClient:
    client = broker.raw(timeout)
    client.handshake(**handshake)
    for number in range(1, channels + 1):
        client.open_channel(number)
    return client


def expect_channel_close(client: RawAMQPClient, channel: int) -> commands.Channel.Close:
    frame = client.read_until(
        lambda f: f.is_method(commands.Channel.Close) or f.is_method(commands.Connection.Close)
    )
    assert frame.is_method(commands.Channel.Close), f"expected channel.close, got {frame.value}"
    assert frame.channel == channel
    close = frame.method
    assert isinstance(close, commands.Channel.Close)
    client.send_frame(commands.Channel.CloseOk(), channel)
    return close


def read_connection_close(client: RawAMQPClient, timeout: float = 2.0) -> commands.Connection.Close:
    """The next connection.close from the server (no close-ok is sent)."""
    frame = client.read_until(lambda f: f.is_method(commands.Connection.Close), timeout)
    close = frame.method
    assert isinstance(close, commands.Connection.Close)
    return close


def expect_connection_close(client: RawAMQPClient, timeout: float = 5.0) -> Closing:
    """Read up to the server's connection.close (answering close-ok) and then EOF."""
    closing = client.wait_for_close(timeout, reply_close_ok=True)
    assert closing.close is not None, f"no connection.close; frames={closing.frames}"
    return closing


def close_fields(close: commands.Connection.Close | commands.Channel.Close) -> tuple:
    return close.reply_code, close.reply_text, close.class_id, close.method_id


# -- management HTTP API ----------------------------------------------------------------------


@dataclass
class HttpReply:
    status: int
    #: Header names lower-cased.
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def management_get(
    broker: BrokerHandle, path: str, auth: tuple[str, str] | None = ("guest", "guest")
) -> HttpReply:
    """GET a management API path; HTTP errors come back as replies, not exceptions."""
    assert broker.management_url is not None, "this broker has no management listener"
    request = urllib.request.Request(broker.management_url + path)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return HttpReply(response.status, headers, response.read())
    except urllib.error.HTTPError as error:
        headers = {k.lower(): v for k, v in error.headers.items()}
        return HttpReply(error.code, headers, error.read())


def await_management(
    broker: BrokerHandle,
    path: str,
    view: Callable[[Any], Any],
    expected: Any,
    timeout: float = 10.0,
) -> Any:
    """`view(document)` once it equals `expected`, or the last view when the deadline passes.

    RabbitMQ's management stats lag behind the broker (queues and channels emit them every
    collect_statistics_interval, the plugin aggregates them once per sample interval) and the
    API offers nothing to wait on, so this polls with a deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        reply = management_get(broker, path)
        current = view(reply.json()) if reply.status == 200 else ("HTTP", reply.status)
        if current == expected or time.monotonic() >= deadline:
            return current
        time.sleep(0.1)  # polling an HTTP API: no event to await
