"""A small raw-socket AMQP 0-9-1 client for conformance and fuzz tests.

It speaks the wire format through pamqp but keeps every step in the test's hands: the protocol
header, each handshake method, and any bytes at all (malformed frames included). Frames are read
as the 7-byte header, then exactly payload + end byte, never byte by byte.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType

from pamqp import body as pamqp_body
from pamqp import commands, frame, header
from pamqp import heartbeat as pamqp_heartbeat
from pamqp.base import Frame as MethodFrame
from pamqp.common import FieldTable

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_HEADER_SIZE = 7
FRAME_END = 0xCE
FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8

DecodedFrame = (
    MethodFrame | header.ContentHeader | pamqp_body.ContentBody | pamqp_heartbeat.Heartbeat
)

#: The client properties pika sends, reduced to what the broker looks at.
CLIENT_PROPERTIES: FieldTable = {
    "product": "tui-queue raw test client",
    "platform": "Python",
    "capabilities": {
        "authentication_failure_close": True,
        "basic.nack": True,
        "connection.blocked": True,
        "consumer_cancel_notify": True,
        "publisher_confirms": True,
    },
}


class ConnectionClosedByPeer(Exception):
    """The socket reached EOF (or was reset) before the expected data arrived."""


@dataclass(frozen=True)
class RawFrame:
    """One frame as read from the socket, decoded by pamqp when possible."""

    frame_type: int
    channel: int
    payload: bytes
    #: pamqp's decoding, or None when pamqp could not decode the payload.
    value: DecodedFrame | None

    @property
    def method(self) -> MethodFrame | None:
        if self.frame_type == FRAME_METHOD and isinstance(self.value, MethodFrame):
            return self.value
        return None

    @property
    def class_method(self) -> tuple[int, int] | None:
        """The (class id, method id) of a method frame, read from the payload itself."""
        if self.frame_type != FRAME_METHOD or len(self.payload) < 4:
            return None
        class_id, method_id = struct.unpack(">HH", self.payload[:4])
        return class_id, method_id

    def is_method(self, method_type: type[MethodFrame]) -> bool:
        return isinstance(self.method, method_type)


@dataclass
class Closing:
    """What a peer did when it ended the conversation."""

    #: connection.close frame the server sent, if any.
    close: commands.Connection.Close | None = None
    #: Every frame read while waiting, in order.
    frames: list[RawFrame] = field(default_factory=list)
    #: True when the socket reached EOF (or was reset) within the time limit.
    eof: bool = False


@dataclass
class Handshake:
    start: commands.Connection.Start
    tune: commands.Connection.Tune


def encode_frame(frame_type: int, channel: int, payload: bytes, end: int = FRAME_END) -> bytes:
    """Build a frame from raw parts (any type, channel, payload or end byte)."""
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + bytes([end])


def encode_method_payload(class_id: int, method_id: int, arguments: bytes = b"") -> bytes:
    return struct.pack(">HH", class_id, method_id) + arguments


def plain_response(user: str, password: str) -> str:
    return f"\0{user}\0{password}"


class RawAMQPClient:
    """A blocking socket client; every read has a deadline."""

    def __init__(self, host: str, port: int, *, timeout: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        self.eof = False

    # -- socket ----------------------------------------------------------------------------

    def connect(self) -> RawAMQPClient:
        self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    @property
    def sock(self) -> socket.socket:
        if self._sock is None:
            raise RuntimeError("not connected")
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def abort(self) -> None:
        """Drop the TCP connection with a reset, as a crashed client would."""
        if self._sock is not None:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close()

    def __enter__(self) -> RawAMQPClient:
        if self._sock is None:
            self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- sending ---------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Send raw bytes; a peer that already closed is not an error here."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.eof = True

    def send_protocol_header(self, data: bytes = PROTOCOL_HEADER) -> None:
        self.send(data)

    def send_frame(
        self,
        value: MethodFrame | header.ContentHeader | pamqp_body.ContentBody,
        channel: int = 0,
    ) -> None:
        self.send(frame.marshal(value, channel))

    def send_heartbeat(self, channel: int = 0) -> None:
        self.send(encode_frame(FRAME_HEARTBEAT, channel, b""))

    def send_message(
        self,
        channel: int,
        body: bytes,
        *,
        exchange: str = "",
        routing_key: str = "",
        mandatory: bool = False,
        properties: commands.Basic.Properties | None = None,
        frame_max: int = 131072,
    ) -> None:
        """basic.publish + content header + body frames split at frame_max - 8."""
        parts = [
            frame.marshal(
                commands.Basic.Publish(
                    exchange=exchange, routing_key=routing_key, mandatory=mandatory
                ),
                channel,
            ),
            frame.marshal(header.ContentHeader(0, len(body), properties), channel),
        ]
        chunk = frame_max - 8
        for start in range(0, len(body), chunk):
            parts.append(
                frame.marshal(pamqp_body.ContentBody(body[start : start + chunk]), channel)
            )
        self.send(b"".join(parts))

    # -- receiving -------------------------------------------------------------------------

    def _fill(self, size: int, deadline: float) -> None:
        """Make the buffer hold at least `size` bytes; TimeoutError or ConnectionClosedByPeer."""
        while len(self._buffer) < size:
            if self.eof:
                raise ConnectionClosedByPeer(f"EOF with {len(self._buffer)}/{size} bytes buffered")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"waited for {size} bytes, have {len(self._buffer)}")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(min(max(65536, size - len(self._buffer)), 1 << 22))
            except TimeoutError:
                raise TimeoutError(f"waited for {size} bytes, have {len(self._buffer)}") from None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
                continue
            self._buffer.extend(chunk)

    def read_exact(self, size: int, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._fill(size, deadline)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def read_available(self, timeout: float | None = None) -> bytes:
        """Everything that arrives until EOF or the time limit, whichever comes first."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with contextlib.suppress(TimeoutError, ConnectionClosedByPeer):
            self._fill(len(self._buffer) + (1 << 30), deadline)
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def read_frame(self, timeout: float | None = None) -> RawFrame:
        """Read one frame: its 7-byte header, then exactly payload + end byte."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._fill(FRAME_HEADER_SIZE, deadline)
        frame_type, channel, size = struct.unpack(">BHI", self._buffer[:FRAME_HEADER_SIZE])
        total = FRAME_HEADER_SIZE + size + 1
        self._fill(total, deadline)
        raw = bytes(self._buffer[:total])
        del self._buffer[:total]
        if raw[-1] != FRAME_END:
            raise ValueError(f"bad frame end byte {raw[-1]:#x} from server")
        value: DecodedFrame | None
        try:
            _, _, decoded = frame.unmarshal(raw)
            value = None if isinstance(decoded, header.ProtocolHeader) else decoded
        except Exception:  # noqa: BLE001 - an undecodable frame is data for the test
            value = None
        return RawFrame(frame_type, channel, raw[FRAME_HEADER_SIZE:-1], value)

    def frames(self, timeout: float | None = None) -> Iterator[RawFrame]:
        """Frames until EOF or the overall time limit (then it just stops)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                yield self.read_frame(remaining)
            except (TimeoutError, ConnectionClosedByPeer):
                return

    def read_until(
        self,
        predicate: Callable[[RawFrame], bool],
        timeout: float | None = None,
        *,
        skip_heartbeats: bool = True,
    ) -> RawFrame:
        """Read frames until one matches; TimeoutError / ConnectionClosedByPeer otherwise."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            received = self.read_frame(max(0.0, deadline - time.monotonic()))
            if skip_heartbeats and received.frame_type == FRAME_HEARTBEAT:
                continue
            if predicate(received):
                return received

    def expect(
        self,
        method_type: type[MethodFrame],
        channel: int | None = None,
        timeout: float | None = None,
    ) -> MethodFrame:
        """The next non-heartbeat frame, which must be `method_type` (on `channel`)."""
        received = self.read_until(lambda _f: True, timeout)
        if not received.is_method(method_type) or (
            channel is not None and received.channel != channel
        ):
            raise AssertionError(
                f"expected {method_type.__name__} on channel {channel}, got {received!r}"
            )
        assert received.method is not None
        return received.method

    def wait_for_close(
        self, timeout: float | None = None, *, reply_close_ok: bool = False
    ) -> Closing:
        """Read until connection.close and then EOF (or the time limit), recording both.

        With reply_close_ok, answer the server's close with close-ok as pika would.
        """
        result = Closing()
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return result
            try:
                received = self.read_frame(remaining)
            except TimeoutError:
                return result
            except ConnectionClosedByPeer:
                result.eof = True
                return result
            result.frames.append(received)
            method = received.method
            if isinstance(method, commands.Connection.Close) and result.close is None:
                result.close = method
                if reply_close_ok:
                    self.send_frame(commands.Connection.CloseOk())

    def wait_for_eof(self, timeout: float | None = None) -> bool:
        """True when the server closes the socket within the time limit (frames are dropped)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                self.read_frame(remaining)
            except TimeoutError:
                return False
            except (ConnectionClosedByPeer, ValueError):
                return True

    # -- conversation steps ----------------------------------------------------------------

    def start(self) -> commands.Connection.Start:
        """Send the protocol header and read connection.start."""
        self.send_protocol_header()
        start = self.expect(commands.Connection.Start, 0)
        assert isinstance(start, commands.Connection.Start)
        return start

    def start_ok(
        self,
        response: str | None = None,
        *,
        user: str = "guest",
        password: str = "guest",
        mechanism: str = "PLAIN",
        client_properties: FieldTable | None = None,
    ) -> None:
        self.send_frame(
            commands.Connection.StartOk(
                client_properties=CLIENT_PROPERTIES
                if client_properties is None
                else client_properties,
                mechanism=mechanism,
                response=plain_response(user, password) if response is None else response,
            )
        )

    def handshake(
        self,
        *,
        user: str = "guest",
        password: str = "guest",
        vhost: str = "/",
        channel_max: int | None = None,
        frame_max: int | None = None,
        heartbeat: int = 0,
    ) -> Handshake:
        """Header, start-ok (PLAIN), tune-ok, open; returns what the server offered.

        channel_max / frame_max None echo the server's values; heartbeat defaults to 0 (off) so a
        slow test is never dropped.
        """
        start = self.start()
        self.start_ok(user=user, password=password)
        tune = self.expect(commands.Connection.Tune, 0)
        assert isinstance(tune, commands.Connection.Tune)
        self.tune_ok(
            tune.channel_max if channel_max is None else channel_max,
            tune.frame_max if frame_max is None else frame_max,
            heartbeat,
        )
        self.send_frame(commands.Connection.Open(virtual_host=vhost))
        self.expect(commands.Connection.OpenOk, 0)
        return Handshake(start, tune)

    def tune_ok(self, channel_max: int, frame_max: int, heartbeat: int) -> None:
        self.send_frame(
            commands.Connection.TuneOk(
                channel_max=channel_max, frame_max=frame_max, heartbeat=heartbeat
            )
        )

    def open_channel(self, channel: int = 1) -> None:
        self.send_frame(commands.Channel.Open(), channel)
        self.expect(commands.Channel.OpenOk, channel)

    def call(
        self,
        method: MethodFrame,
        channel: int,
        reply: type[MethodFrame],
        timeout: float | None = None,
    ) -> MethodFrame:
        """Send a synchronous method and return its reply (which must be `reply`)."""
        self.send_frame(method, channel)
        return self.expect(reply, channel, timeout)

    def close_connection(self, timeout: float | None = None) -> None:
        self.send_frame(commands.Connection.Close(200, "bye", 0, 0))
        with contextlib.suppress(TimeoutError, ConnectionClosedByPeer):
            self.read_until(lambda f: f.is_method(commands.Connection.CloseOk), timeout)
        self.close()
