"""Opening pika connections, and saying in one line why one could not be opened."""

from __future__ import annotations

import contextlib
import socket
import urllib.parse
from collections.abc import Iterator

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tui_queue.engine.config import QueueSpec


class BrokerConnectError(Exception):
    """The broker could not be reached or refused us; str() is one line fit for stderr."""


# What a lost connection, a closed channel or a refused connect looks like to a thread that owns
# a pika connection: each of them is handled by dropping that connection and starting afresh.
LINK_ERRORS = (pika.exceptions.AMQPError, OSError, BrokerConnectError)


def one_line(error: object) -> str:
    """An exception as one line: pika's messages may span lines, and some are empty."""
    text = str(error) or type(error).__name__
    return " ".join(text.split())


def safe_url(url: str) -> str:
    """The URL without its password, for messages and headers."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}@{netloc}"))


def url_parts(url: str) -> tuple[str, int, str, str, str]:
    """(host, port, vhost, user, password) as pika reads the URL, defaults filled in."""
    parameters = parameters_for(url)
    credentials = parameters.credentials
    user = getattr(credentials, "username", "guest")
    password = getattr(credentials, "password", "guest")
    return parameters.host, parameters.port, parameters.virtual_host, user, password


def parameters_for(
    url: str, heartbeat: int | None = None, name: str = "tui-queue", timeout: float = 5.0
) -> pika.URLParameters:
    if not url.startswith(("amqp://", "amqps://")):
        raise BrokerConnectError(f"not an AMQP URL: {safe_url(url)!r} (expected amqp://...)")
    try:
        parameters = pika.URLParameters(url)
    except (ValueError, TypeError) as error:
        raise BrokerConnectError(f"bad AMQP URL {safe_url(url)!r}: {error}") from None
    if heartbeat is not None:
        parameters.heartbeat = heartbeat
    parameters.connection_attempts = 1
    parameters.socket_timeout = timeout
    parameters.stack_timeout = timeout * 2
    # Shown in RabbitMQ's management UI, so a person can tell our connections apart.
    parameters.client_properties = {"connection_name": name}
    return parameters


def connect(
    url: str, heartbeat: int | None = None, name: str = "tui-queue", timeout: float = 5.0
) -> BlockingConnection:
    """A BlockingConnection for the calling thread only, or BrokerConnectError."""
    parameters = parameters_for(url, heartbeat, name, timeout)
    try:
        return BlockingConnection(parameters)
    except (pika.exceptions.AMQPError, OSError) as error:
        raise BrokerConnectError(describe_connect_error(error, url)) from None


def describe_connect_error(error: BaseException, url: str) -> str:
    where = safe_url(url)
    if isinstance(
        error, pika.exceptions.ProbableAuthenticationError | pika.exceptions.AuthenticationError
    ):
        user = url_parts(url)[3]
        return (
            f"the broker at {where} refused the login of user {user!r} "
            "(wrong password, or guest connecting from a non-local address)"
        )
    if isinstance(error, pika.exceptions.ProbableAccessDeniedError):
        vhost = url_parts(url)[2]
        return f"the broker at {where} refused access to vhost {vhost!r} (missing, or not allowed)"
    if isinstance(error, pika.exceptions.IncompatibleProtocolError):
        return f"{where} does not answer as an AMQP 0-9-1 broker"
    if isinstance(error, socket.gaierror):
        return f"cannot reach the broker at {where}: unknown host"
    if isinstance(error, pika.exceptions.AMQPConnectionError):
        cause = error.args[0] if error.args else error
        reason = getattr(cause, "exception", None) or cause
        if isinstance(reason, ConnectionRefusedError):
            return f"cannot reach the broker at {where}: connection refused"
        if isinstance(reason, TimeoutError | socket.timeout):
            return f"cannot reach the broker at {where}: timed out"
        return f"cannot reach the broker at {where}: {one_line(reason)}"
    return f"cannot reach the broker at {where}: {one_line(error)}"


@contextlib.contextmanager
def one_off_channel(url: str, name: str) -> Iterator[BlockingChannel]:
    """A channel on a connection of its own, for one chore on the calling thread, closed after.
    The broker failing on the way reads as BrokerConnectError, one line."""
    conn = connect(url, name=name)
    try:
        yield conn.channel()
    except (pika.exceptions.AMQPError, OSError) as error:
        raise BrokerConnectError(
            f"the broker at {safe_url(url)} failed: {one_line(error)}"
        ) from None
    finally:
        if conn.is_open:
            with contextlib.suppress(*LINK_ERRORS):  # broken already: nothing left to close
                conn.close()


def declare_queue(channel: BlockingChannel, spec: QueueSpec, passive: bool = False) -> int:
    """Declare the task queue as the tutorial does; returns the ready count from declare-ok."""
    frame = channel.queue_declare(
        queue=spec.name, durable=spec.durable, arguments=spec.arguments(), passive=passive
    )
    return int(frame.method.message_count)
