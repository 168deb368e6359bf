"""Settings of the embedded broker, with RabbitMQ 3.10's defaults."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_CONSUMER_TIMEOUT_MS = 1_800_000
DEFAULT_CHANNEL_TICK_MS = 60_000
MAX_MESSAGE_SIZE = 134_217_728


@dataclass(frozen=True)
class BrokerConfig:
    host: str = "127.0.0.1"
    port: int = 5672
    user: str = "guest"
    password: str = "guest"
    vhost: str = "/"
    heartbeat: int = 60
    consumer_timeout_ms: int | None = DEFAULT_CONSUMER_TIMEOUT_MS
    channel_tick_ms: int = DEFAULT_CHANNEL_TICK_MS
    frame_max: int = 131_072
    channel_max: int = 2047
    max_message_size: int = MAX_MESSAGE_SIZE
    handshake_timeout: float = 10.0
    # None: no management listener; 0: a free port.
    management_port: int | None = None
    # None: nothing is written to disk (durable things live as long as the process).
    data_dir: Path | str | None = None
    # A client whose unsent output passes this many bytes is not read until it drains.
    outbound_high_water: int = 4 * 1024 * 1024
