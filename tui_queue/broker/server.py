"""The broker: listener, the virtual host, the consumer-timeout tick and orderly shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tui_queue.broker.config import BrokerConfig
from tui_queue.broker.connection import Connection
from tui_queue.broker.errors import AMQPError
from tui_queue.broker.vhost import VirtualHost

SHUTDOWN_GRACE = 2.0


class Broker:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.vhost = VirtualHost(config.vhost)
        self.connections: set[Connection] = set()
        self.server: asyncio.Server | None = None
        self.port = 0
        self.started_at = time.time()
        self._tick: asyncio.TimerHandle | None = None
        self.management: object | None = None
        self.management_port = 0
        # Publisher confirms wait for a disk sync only when there is a durable store.
        self.durable_confirms = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: Connection(self), self.config.host, self.config.port, reuse_address=True
        )
        self.port = int(self.server.sockets[0].getsockname()[1])
        if self.config.management_port is not None:
            from tui_queue.broker.management import ManagementServer

            management = ManagementServer(self)
            self.management_port = await management.start(
                self.config.host, self.config.management_port
            )
            self.management = management
        self._schedule_tick()

    def after_sync(self, callback: Callable[[], None]) -> None:
        """Run `callback` once what was written so far is on disk (at once without a store)."""
        callback()

    def _schedule_tick(self) -> None:
        loop = asyncio.get_running_loop()
        self._tick = loop.call_later(self.config.channel_tick_ms / 1000, self._on_tick)

    def _on_tick(self) -> None:
        timeout = self.config.consumer_timeout_ms
        if timeout:
            now = time.monotonic()
            for connection in list(self.connections):
                for channel in list(connection.channels.values()):
                    error = channel.check_consumer_timeout(now, timeout)
                    if error is not None:
                        connection.close_channel_for_timeout(channel, error)
        self._schedule_tick()

    async def shutdown(self, reason: str = "shutdown") -> None:
        """Clients get 320 CONNECTION_FORCED; then the listener and every socket close."""
        if self._tick is not None:
            self._tick.cancel()
        if self.server is not None:
            self.server.close()
        error = AMQPError(320, f"broker forced connection closure with reason '{reason}'")
        for connection in list(self.connections):
            connection.force_close(error)
        deadline = time.monotonic() + SHUTDOWN_GRACE
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        if self.management is not None:
            await self.management.stop()  # type: ignore[attr-defined]
        if self.server is not None:
            await self.server.wait_closed()
