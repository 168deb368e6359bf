"""One client connection: frame reading, the handshake, heartbeats, channels and closing.

Frames are read as RabbitMQ's reader does: the 7-byte header first, then exactly the payload and
the end byte. Publish and ack, the frames a busy work queue is made of, are decoded by hand;
everything else goes through the method catalogue in codec.py.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
import time
from typing import TYPE_CHECKING, Any

from pamqp import commands as cmd

from tui_queue.broker.channel import PUBLISH_IDS, Channel
from tui_queue.broker.codec import (
    FRAME_END,
    FRAME_HEADER,
    Reader,
    Typed,
    UnknownMethod,
    clip_reply_text,
    decode_method,
    decode_str,
    encode_method,
    method_ids,
    typed_table,
)
from tui_queue.broker.errors import (
    AMQPError,
    access_refused,
    channel_error,
    command_invalid,
    erlang_binary,
    frame_error,
    internal_error,
    not_allowed,
    unexpected_frame,
)
from tui_queue.broker.message import Message

if TYPE_CHECKING:
    from tui_queue.broker.server import Broker

log = logging.getLogger(__name__)

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
# RabbitMQ also answers the 0-9 and 0-8 headers with 0-9-1's connection.start.
ACCEPTED_HEADERS = (PROTOCOL_HEADER, b"AMQP\x01\x01\x00\x09", b"AMQP\x01\x01\x08\x00")
# States before tuning is done: RabbitMQ answers any error there by closing silently.
HANDSHAKE_STATES = ("start_ok", "tune_ok")
FRAME_MIN_SIZE = 4096
# RabbitMQ allows a frame's payload up to frame_max (it adds a fudge of one frame's overhead)
# but reports the limit as frame_max - 8.
FRAME_OVERHEAD = 8
SILENT_CLOSE_DELAY = 3.0
CLOSE_OK_TIMEOUT = 30.0
HEARTBEAT_FRAME = b"\x08\x00\x00\x00\x00\x00\x00\xce"

_PUBLISH_KEY = (60 << 16) | 40
_ACK_KEY = (60 << 16) | 80
_METHOD_KEY = struct.Struct(">I")
_ACK_FIELDS = struct.Struct(">QB")
_CONTENT_HEADER = struct.Struct(">HHQ")
_END_BYTE = FRAME_END[0]

SERVER_CAPABILITIES = (
    "publisher_confirms",
    "exchange_exchange_bindings",
    "basic.nack",
    "consumer_cancel_notify",
    "connection.blocked",
    "consumer_priorities",
    "authentication_failure_close",
    "per_consumer_qos",
    "direct_reply_to",
)


def erlang_pretty_pair(atom: str, value: int, column: int) -> str:
    """`{atom,value}` as Erlang's ~p prints it at `column`: wrapped past 80 columns."""
    flat = f"{{{atom},{value}}}"
    if column + len(flat) <= 80:
        return flat
    return f"{{{atom},\n{' ' * (column + 1)}{value}}}"


def _snippet(payload: bytes) -> tuple[str, str]:
    if len(payload) <= 16:
        return "all", erlang_binary(payload)
    return "first 16", erlang_binary(payload[:16])


def _frame_text(frame_type: int, payload: bytes) -> str:
    which, shown = _snippet(payload)
    return f"type {frame_type}, {which} octets = {shown}"


def _is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


class Connection(asyncio.Protocol):
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.config = broker.config
        self.vhost = broker.vhost
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        # header -> start_ok -> tune_ok -> open -> running -> closing -> closed
        self.state = "header"
        self.channels: dict[int, Channel] = {}
        # Channels we closed and whose close-ok has not come yet.
        self.closing_channels: dict[int, Channel] = {}
        self.frame_max = FRAME_MIN_SIZE
        self.channel_max = self.config.channel_max
        self.heartbeat = 0
        self.client_properties: dict[str, Typed] = {}
        self.user = ""
        self.out: list[bytes] = []
        self.out_size = 0
        self.flush_scheduled = False
        self.write_blocked = False
        self.received_since_tick = True
        self.sent_since_tick = True
        self.missed_heartbeats = 0
        self.timers: list[asyncio.TimerHandle] = []
        self.confirm_channels: set[Channel] = set()
        self.peer = ""
        self.connected_at = time.time()

    # ------------------------------------------------------------------ transport events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=self.config.outbound_high_water)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.broker.connections.add(self)
        self.timers.append(
            self.loop.call_later(self.config.handshake_timeout, self._handshake_timeout)
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.state = "closed"
        self._teardown()
        self.broker.connections.discard(self)

    def pause_writing(self) -> None:
        # The client is not reading what we send: stop reading what it sends (RabbitMQ's flow
        # control), and stop delivering to it, so neither side can grow our memory.
        self.write_blocked = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_blocked = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
        for channel in list(self.channels.values()):
            channel._unblock_consumers(list(channel.consumers.values()))

    def data_received(self, data: bytes) -> None:
        self.received_since_tick = True
        buf = self.buffer
        buf += data
        pos = 0
        try:
            if self.state == "header":
                if len(buf) < 8:
                    return
                pos = 8
                self._protocol_header(bytes(buf[:8]))
            size_limit = self.frame_max
            while self.transport is not None:
                available = len(buf) - pos
                if available < 7:
                    break
                frame_type, channel, size = FRAME_HEADER.unpack_from(buf, pos)
                if size > size_limit:
                    if self.state in HANDSHAKE_STATES:
                        self._silent_close()
                        return
                    self._fatal_frame_error(
                        f"type {frame_type}, all octets = <<>>: "
                        f"{{frame_too_large,{size},{size_limit - FRAME_OVERHEAD}}}"
                    )
                    return
                end = pos + 7 + size
                if len(buf) <= end:
                    break
                payload = bytes(buf[pos + 7 : end])
                if buf[end] != _END_BYTE:
                    if self.state in HANDSHAKE_STATES:
                        self._silent_close()
                        return
                    prefix = f"{_frame_text(frame_type, payload)}: "
                    self._fatal_frame_error(
                        prefix
                        + erlang_pretty_pair("invalid_frame_end_marker", buf[end], len(prefix))
                    )
                    return
                pos = end + 1
                self._frame(frame_type, channel, payload)
                size_limit = self.frame_max
        finally:
            if pos:
                del buf[:pos]
            for channel_obj in self.confirm_channels:
                channel_obj.flush_confirms()
            self.confirm_channels.clear()
            # Replies to what was just read go out now rather than a loop turn later: a client
            # waiting on each reply (prefetch 1, a confirm per publish) feels every turn.
            if self.out:
                self.flush()

    # ------------------------------------------------------------------ output

    def send(self, data: bytes) -> None:
        if self.transport is None:
            return
        self.out.append(data)
        self.out_size += len(data)
        self.sent_since_tick = True
        if self.out_size >= 65536:
            # Hand big batches to the transport now, so its buffer limit can push back at once.
            self.flush()
        elif not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        if not self.out or self.transport is None:
            self.out.clear()
            self.out_size = 0
            return
        data = b"".join(self.out)
        self.out.clear()
        self.out_size = 0
        self.transport.write(data)

    def send_content(
        self, channel: int, method: bytes, message: Message, properties: bytes | None
    ) -> None:
        body = message.body
        header = message.content_header(properties)
        parts = [
            FRAME_HEADER.pack(1, channel, len(method)),
            method,
            FRAME_END,
            FRAME_HEADER.pack(2, channel, len(header)),
            header,
            FRAME_END,
        ]
        chunk = self.frame_max - FRAME_OVERHEAD
        if len(body) <= chunk:
            if body:
                parts += (FRAME_HEADER.pack(3, channel, len(body)), body, FRAME_END)
        else:
            for start in range(0, len(body), chunk):
                piece = body[start : start + chunk]
                parts += (FRAME_HEADER.pack(3, channel, len(piece)), piece, FRAME_END)
        self.send(b"".join(parts))

    def mark_confirms_pending(self, channel: Channel) -> None:
        self.confirm_channels.add(channel)
        if not self.flush_scheduled and self.transport is not None:
            # Confirms that become ready outside data_received (after a disk sync) go out on
            # the next loop turn.
            self.flush_scheduled = True
            self.loop.call_soon(self._flush_confirms_then_output)

    def _flush_confirms_then_output(self) -> None:
        for channel in self.confirm_channels:
            channel.flush_confirms()
        self.confirm_channels.clear()
        self.flush()

    def client_capability(self, name: str) -> bool:
        capabilities = self.client_properties.get("capabilities")
        if capabilities is None or capabilities.type != "table":
            return False
        flag = capabilities.value.get(name)
        return bool(flag is not None and flag.value is True)

    # ------------------------------------------------------------------ handshake

    def _protocol_header(self, header: bytes) -> None:
        if header not in ACCEPTED_HEADERS:
            assert self.transport is not None
            self.transport.write(PROTOCOL_HEADER)
            self.transport.close()
            self.transport = None
            return
        self.state = "start_ok"
        server_properties = typed_table(
            {
                "capabilities": {name: True for name in SERVER_CAPABILITIES},
                "cluster_name": "tui-queue@localhost",
                "copyright": "tui-queue embedded broker",
                "information": "An embedded AMQP 0-9-1 broker that behaves like RabbitMQ 3.10",
                "platform": "Python",
                "product": "RabbitMQ",
                "version": "3.10.8",
            }
        )
        self.send(
            encode_method(
                cmd.Connection.Start,
                0,
                version_major=0,
                version_minor=9,
                server_properties=server_properties,
                mechanisms=b"PLAIN AMQPLAIN",
                locales=b"en_US",
            )
        )

    def _handshake_timeout(self) -> None:
        if self.state in ("header", "start_ok", "tune_ok", "open") and self.transport:
            self.transport.abort()

    def _start_ok(self, m: Any) -> None:
        self.client_properties = m.client_properties
        mechanism = m.mechanism
        credentials = None
        if mechanism in ("PLAIN", "AMQPLAIN"):
            credentials = self._credentials(mechanism, m.response)
        if credentials is None:
            # An unknown mechanism or a malformed response: RabbitMQ just drops the socket later.
            self._silent_close()
            return
        user, password = credentials
        ok = user == self.config.user and password == self.config.password
        if ok and user == "guest" and not self._local_address_is_loopback():
            ok = False
        if not ok:
            if self.client_capability("authentication_failure_close"):
                self._close_connection(
                    access_refused(
                        f"Login was refused using authentication mechanism {mechanism}. "
                        "For details see the broker logfile."
                    )
                )
            # Either way the socket goes after the grace period, close-ok or not.
            self._silent_close()
            return
        self.user = user
        self.state = "tune_ok"
        self.send(
            encode_method(
                cmd.Connection.Tune,
                0,
                channel_max=self.config.channel_max,
                frame_max=self.config.frame_max,
                heartbeat=self.config.heartbeat,
            )
        )

    @staticmethod
    def _credentials(mechanism: str, response: bytes) -> tuple[str, str] | None:
        if mechanism == "PLAIN":
            parts = response.split(b"\x00")
            if len(parts) != 3:
                return None
            return decode_str(parts[1]), decode_str(parts[2])
        try:
            framed = len(response).to_bytes(4, "big") + response
            table = Reader(framed).table()
        except (ValueError, IndexError):
            return None
        login, password = table.get("LOGIN"), table.get("PASSWORD")
        if login is None or password is None:
            return None
        return decode_str(login.value), decode_str(password.value)

    def _local_address_is_loopback(self) -> bool:
        assert self.transport is not None
        sockname = self.transport.get_extra_info("sockname")
        return bool(sockname) and _is_loopback(str(sockname[0]))

    def _tune_ok(self, m: Any) -> None:
        for field, minimum, maximum, value in (
            ("channel_max", 1, self.config.channel_max, m.channel_max),
            ("frame_max", FRAME_MIN_SIZE, self.config.frame_max, m.frame_max),
        ):
            if value != 0 and value < minimum:
                raise not_allowed(
                    f"negotiated {field} = {value} is lower than the minimum allowed value "
                    f"({minimum})"
                ).at(10, 30)
            if maximum != 0 and (value == 0 or value > maximum):
                detail = " (no limit)" if field == "channel_max" and value == 0 else ""
                raise not_allowed(
                    f"negotiated {field} = {value}{detail} is higher than the maximum allowed "
                    f"value ({maximum})"
                ).at(10, 30)
        self.channel_max = m.channel_max
        self.frame_max = m.frame_max
        self.heartbeat = m.heartbeat
        self.state = "open"
        if self.heartbeat:
            self._schedule_heartbeats()

    def _open(self, m: Any) -> None:
        if m.virtual_host != self.config.vhost:
            raise not_allowed(f"vhost {m.virtual_host} not found")
        self.state = "running"
        self.send(encode_method(cmd.Connection.OpenOk, 0))

    # ------------------------------------------------------------------ heartbeats

    def _schedule_heartbeats(self) -> None:
        self.timers.append(self.loop.call_later(self.heartbeat / 2, self._heartbeat_send_tick))
        self.timers.append(self.loop.call_later(self.heartbeat, self._heartbeat_receive_tick))

    def _heartbeat_send_tick(self) -> None:
        if self.transport is None:
            return
        if not self.sent_since_tick:
            self.send(HEARTBEAT_FRAME)
        self.sent_since_tick = False
        self.timers.append(self.loop.call_later(self.heartbeat / 2, self._heartbeat_send_tick))

    def _heartbeat_receive_tick(self) -> None:
        if self.transport is None:
            return
        if self.received_since_tick:
            self.missed_heartbeats = 0
        else:
            self.missed_heartbeats += 1
            if self.missed_heartbeats >= 2:
                # RabbitMQ drops the socket without a close method after two silent periods.
                self._abort()
                return
        self.received_since_tick = False
        self.timers.append(self.loop.call_later(self.heartbeat, self._heartbeat_receive_tick))

    # ------------------------------------------------------------------ frames

    def _frame(self, frame_type: int, number: int, payload: bytes) -> None:
        try:
            if self.state == "closing":
                self._frame_while_closing(frame_type, number, payload)
            elif frame_type == 8:
                if payload:
                    raise frame_error(f"{_frame_text(frame_type, payload)}: unknown_frame")
                if number != 0:
                    raise unexpected_frame(_frame_text(frame_type, payload))
            elif number == 0:
                self._connection_frame(frame_type, payload)
            elif self.state != "running":
                raise unexpected_frame(_frame_text(frame_type, payload))
            else:
                self._channel_frame(frame_type, number, payload)
        except AMQPError as error:
            if self.state in HANDSHAKE_STATES:
                self._silent_close()
            elif error.closes_connection or number == 0:
                self._close_connection(error)
            else:
                self._close_channel(number, error)
        except UnknownMethod:
            # RabbitMQ's reader crashes on a method it cannot name: the socket just drops.
            self._abort()
        except Exception:
            # A bug of ours must cost this client its connection, never the broker.
            self.broker.internal_errors += 1
            log.exception("internal error on connection %s", self.peer)
            self._close_connection(internal_error("internal error; see the broker log"))

    def _connection_frame(self, frame_type: int, payload: bytes) -> None:
        if frame_type != 1:
            if frame_type in (2, 3):
                raise unexpected_frame(_frame_text(frame_type, payload))
            raise frame_error(f"{_frame_text(frame_type, payload)}: unknown_frame")
        if len(payload) < 4:
            raise frame_error(f"{_frame_text(frame_type, payload)}: unknown_frame")
        method = decode_method(payload)
        kind = type(method)
        expected = {
            "start_ok": cmd.Connection.StartOk,
            "tune_ok": cmd.Connection.TuneOk,
            "open": cmd.Connection.Open,
        }.get(self.state)
        if kind is cmd.Connection.Close:
            self._client_close()
        elif kind is cmd.Connection.CloseOk:
            self._abort()
        elif expected is not None and kind is expected:
            try:
                if kind is cmd.Connection.StartOk:
                    self._start_ok(method)
                elif kind is cmd.Connection.TuneOk:
                    self._tune_ok(method)
                else:
                    self._open(method)
            except AMQPError as error:
                raise error.at(*method_ids(kind)) from None
        elif kind in (cmd.Connection.Blocked, cmd.Connection.Unblocked):
            pass
        else:
            raise channel_error(f"unexpected method in connection state {self.state}").at(
                *method_ids(kind)
            )

    def _frame_while_closing(self, frame_type: int, number: int, payload: bytes) -> None:
        # After connection.close we wait for close-ok and ignore everything else.
        if number != 0 or frame_type != 1 or len(payload) < 4:
            return
        key = _METHOD_KEY.unpack_from(payload)[0]
        if key == (10 << 16) | 51:
            self._abort()
        elif key == (10 << 16) | 50:
            self.send(encode_method(cmd.Connection.CloseOk, 0))
            self.flush()
            self._abort()

    def _channel_frame(self, frame_type: int, number: int, payload: bytes) -> None:
        closing = self.closing_channels.get(number)
        if closing is not None:
            self._frame_on_closing_channel(number, frame_type, payload)
            return
        channel = self.channels.get(number)
        if channel is None:
            if frame_type in (2, 3):
                raise unexpected_frame("expected method frame, got non method frame instead")
            self._open_channel(number, frame_type, payload)
            return
        pending = channel.pending
        if frame_type == 1:
            if pending is not None:
                if pending.remaining < 0:
                    raise unexpected_frame(
                        "expected content header for class 60, got non content header frame instead"
                    ).at(*PUBLISH_IDS)
                raise unexpected_frame(
                    "expected content body, got non content body frame instead"
                ).at(*PUBLISH_IDS)
            if len(payload) < 4:
                raise frame_error(f"{_frame_text(frame_type, payload)}: unknown_frame")
            key = _METHOD_KEY.unpack_from(payload)[0]
            if key == _PUBLISH_KEY:
                self._publish(channel, payload)
            elif key == _ACK_KEY and len(payload) == 13:
                tag, bits = _ACK_FIELDS.unpack_from(payload, 4)
                try:
                    channel.ack(tag, bool(bits & 1))
                except AMQPError as error:
                    raise error.at(60, 80) from None
            else:
                method = decode_method(payload)
                kind = type(method)
                if kind is cmd.Channel.Close:
                    self._client_closes_channel(channel)
                elif kind is cmd.Channel.CloseOk:
                    pass
                elif kind is cmd.Channel.Open:
                    raise channel_error("second 'channel.open' seen").at(20, 10)
                elif method_ids(kind)[0] == 10:
                    raise command_invalid("unimplemented method").at(*method_ids(kind))
                else:
                    channel.handle_method(method)
        elif frame_type == 2:
            if len(payload) < 12:
                raise frame_error(f"{_frame_text(frame_type, payload)}: unknown_frame")
            if pending is None:
                raise unexpected_frame("expected method frame, got non method frame instead")
            if pending.remaining >= 0:
                raise unexpected_frame(
                    "expected content body, got non content body frame instead"
                ).at(*PUBLISH_IDS)
            class_id, weight, body_size = _CONTENT_HEADER.unpack_from(payload)
            if weight != 0:
                raise unexpected_frame(
                    "expected content header for class 60, got non content header frame instead"
                ).at(*PUBLISH_IDS)
            if class_id != 60:
                raise unexpected_frame(
                    f"expected content header for class 60, got one for class {class_id} instead"
                ).at(*PUBLISH_IDS)
            channel.content_header(body_size, payload[12:])
        elif frame_type == 3:
            if pending is None:
                raise unexpected_frame("expected method frame, got non method frame instead")
            if pending.remaining < 0:
                raise unexpected_frame(
                    "expected content header for class 60, got non content header frame instead"
                ).at(*PUBLISH_IDS)
            channel.content_body(payload)
        else:
            raise frame_error(f"{_frame_text(frame_type, payload)}: unknown_frame")

    def _publish(self, channel: Channel, payload: bytes) -> None:
        # Read in place, as every message starts here: class, method and the reserved ticket
        # (6 bytes), then the exchange and routing key (short strings) and the flag bits.
        size = len(payload)
        if size > 6:
            exchange_end = 7 + payload[6]
            if exchange_end < size:
                key_end = exchange_end + 1 + payload[exchange_end]
                if key_end < size:
                    bits = payload[key_end]
                    channel.start_publish(
                        decode_str(payload[7:exchange_end]),
                        decode_str(payload[exchange_end + 1 : key_end]),
                        bool(bits & 1),
                        bool(bits & 2),
                    )
                    return
        raise frame_error("cannot decode method basic.publish: truncated", 60, 40)

    def _open_channel(self, number: int, frame_type: int, payload: bytes) -> None:
        if len(self.channels) + len(self.closing_channels) >= self.channel_max:
            raise not_allowed(
                f"number of channels opened ({len(self.channels)}) has reached the negotiated "
                f"channel_max ({self.channel_max})"
            )
        method = decode_method(payload) if frame_type == 1 and len(payload) >= 4 else None
        if not isinstance(method, cmd.Channel.Open):
            raise channel_error("expected 'channel.open'").at(
                *(method_ids(type(method)) if method is not None else (0, 0))
            )
        self.channels[number] = Channel(self, number)
        # channel.open-ok carries a longstr that RabbitMQ sends empty.
        self.send(encode_method(cmd.Channel.OpenOk, number))

    def _frame_on_closing_channel(self, number: int, frame_type: int, payload: bytes) -> None:
        if frame_type != 1 or len(payload) < 4:
            return
        key = _METHOD_KEY.unpack_from(payload)[0]
        if key == (20 << 16) | 41:  # close-ok: the number is free again
            self.closing_channels.pop(number, None)
        elif key == (20 << 16) | 40:  # both sides closed at once
            self.closing_channels.pop(number, None)
            self.send(encode_method(cmd.Channel.CloseOk, number))

    def _client_closes_channel(self, channel: Channel) -> None:
        # Unacked messages are requeued before close-ok goes out, as in RabbitMQ.
        del self.channels[channel.number]
        channel.teardown()
        self.send(encode_method(cmd.Channel.CloseOk, channel.number))

    # ------------------------------------------------------------------ closing

    def _close_channel(self, number: int, error: AMQPError) -> None:
        channel = self.channels.pop(number, None)
        if channel is None:
            return
        channel.teardown()
        self.closing_channels[number] = channel
        self.send(
            encode_method(
                cmd.Channel.Close,
                number,
                reply_code=error.code,
                reply_text=clip_reply_text(error.reply_text),
                class_id=error.class_id,
                method_id=error.method_id,
            )
        )

    def close_channel_for_timeout(self, channel: Channel, error: AMQPError) -> None:
        self._close_channel(channel.number, error)

    def _close_connection(self, error: AMQPError) -> None:
        if self.state in ("closing", "closed") or self.transport is None:
            return
        self.state = "closing"
        self._teardown()
        self.send(
            encode_method(
                cmd.Connection.Close,
                0,
                reply_code=error.code,
                reply_text=clip_reply_text(error.reply_text),
                class_id=error.class_id,
                method_id=error.method_id,
            )
        )
        self.flush()
        self.timers.append(self.loop.call_later(CLOSE_OK_TIMEOUT, self._abort))

    def force_close(self, error: AMQPError) -> None:
        """The broker is going away: tell the client why (320) and wait briefly for close-ok."""
        self._close_connection(error)

    def _fatal_frame_error(self, text: str) -> None:
        # RabbitMQ sends the close, then drops the socket after a grace period without waiting.
        self._close_connection(frame_error(text))
        self.state = "closing"
        if self.transport is not None:
            self.transport.pause_reading()
        self.timers.append(self.loop.call_later(SILENT_CLOSE_DELAY, self._abort))

    def _client_close(self) -> None:
        self.state = "closing"
        self._teardown()
        self.send(encode_method(cmd.Connection.CloseOk, 0))
        self.flush()
        if self.transport is not None:
            self.transport.close()

    def _silent_close(self) -> None:
        """Stop listening and drop the socket after RabbitMQ's grace period, without a word."""
        self.state = "closing"
        if self.transport is not None:
            self.transport.pause_reading()
        self.timers.append(self.loop.call_later(SILENT_CLOSE_DELAY, self._abort))

    def _abort(self) -> None:
        if self.transport is not None:
            self.flush()
            self.transport.close()

    def _teardown(self) -> None:
        """Channels end (requeueing), exclusive queues go; runs once however the end came."""
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()
        channels = list(self.channels.values())
        self.channels.clear()
        for channel in channels:
            channel.teardown()
        self.vhost.owner_gone(self)

    def is_running(self) -> bool:
        return self.state == "running"

    def channel_count(self) -> int:
        return len(self.channels)

    def properties_summary(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "user": self.user,
            "channels": len(self.channels),
            "connected_at": self.connected_at,
        }
