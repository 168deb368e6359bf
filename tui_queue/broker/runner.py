"""Run a broker on its own event loop in a background thread (tests, benchmarks, embedding)."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from tui_queue.broker.config import BrokerConfig
from tui_queue.broker.server import Broker


class BrokerThread:
    """`start()` returns once the broker listens; `stop()` shuts it down and joins the thread."""

    def __init__(self, config: BrokerConfig | None = None) -> None:
        self.config = config or BrokerConfig(port=0)
        self.broker: Broker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def amqp_port(self) -> int:
        assert self.broker is not None
        return self.broker.port

    @property
    def management_port(self) -> int:
        assert self.broker is not None
        return self.broker.management_port

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def url(self) -> str:
        return (
            f"amqp://{self.config.user}:{self.config.password}@{self.config.host}:"
            f"{self.amqp_port}/%2F"
        )

    @property
    def management_url(self) -> str:
        return f"http://{self.config.host}:{self.management_port}"

    def start(self, timeout: float = 10.0) -> BrokerThread:
        self._thread = threading.Thread(target=self._run, name="tui-queue-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("embedded broker did not start")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self.broker = Broker(self.config)
        try:
            await self.broker.start()
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stopped.wait()
        await self.broker.shutdown()

    def call(self, function: object) -> None:
        """Run a callable on the broker's loop (thread-safe)."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(function)  # type: ignore[arg-type]

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stopped is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> BrokerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
