"""The broker: listener, the virtual host, the consumer-timeout tick and orderly shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tui_queue.broker.config import BrokerConfig
from tui_queue.broker.connection import Connection
from tui_queue.broker.errors import AMQPError
from tui_queue.broker.store import DurableStore, RecoveryReport
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
        self.store: DurableStore | None = None
        # Unexpected exceptions caught per connection; the fuzz tests insist on zero.
        self.internal_errors = 0
        self.recovery: RecoveryReport | None = None

    def open_store(self) -> None:
        """Open and load the durable store; raises StoreError naming the path if it cannot."""
        if self.config.data_dir is None:
            return
        store = DurableStore(self.config.data_dir)
        self.recovery = store.recover(self.vhost)
        vhost = self.vhost
        vhost.on_queue_created = store.queue_created
        vhost.on_queue_deleted = store.queue_deleted
        vhost.on_exchange_created = store.exchange_created
        vhost.on_exchange_deleted = store.exchange_deleted
        vhost.on_binding_changed = lambda _x, binding, args, added: store.binding_changed(
            vhost, binding, args, added
        )
        self.store = store
        # With every queue and message back, limits, deadlines and leases apply again (this may
        # drop or dead-letter messages, which the store then hears about as usual).
        for queue in list(vhost.queues.values()):
            if not queue.deleted:
                queue.recovered()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.store is None:
            self.open_store()
        if self.store is not None:
            self.store.start(loop)
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
        if self.store is None:
            callback()
        else:
            self.store.after_sync(callback)

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
        if self.store is not None:
            # After the connections: their unacked messages were requeued and written first.
            self.store.hand_over()
            await asyncio.get_running_loop().run_in_executor(None, self.store.close)
            self.store = None
