"""`tui-queue broker`: run the embedded broker in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

from tui_queue.broker.config import BrokerConfig
from tui_queue.broker.server import Broker
from tui_queue.broker.store import StoreError


async def _serve(config: BrokerConfig) -> None:
    broker = Broker(config)
    await broker.start()
    host = config.host if ":" not in config.host else f"[{config.host}]"
    line = f"tui-queue broker listening on amqp://{host}:{broker.port}"
    if config.management_port is not None:
        line += f" (management http://{host}:{broker.management_port})"
    print(line, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await broker.shutdown()


def run_foreground(config: BrokerConfig) -> int:
    try:
        asyncio.run(_serve(config))
    except StoreError as exc:
        print(f"tui-queue broker: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"tui-queue broker: cannot listen on {config.host}:{config.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 1
    return 0
