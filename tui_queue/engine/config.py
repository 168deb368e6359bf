"""Settings of the engine, its queue and its workers, validated where they are made."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

# RabbitMQ's default max_message_size (3.10): a bigger body is refused before it reaches the wire.
MAX_BODY_BYTES = 134_217_728
# basic.qos prefetch_count is an AMQP short.
MAX_PREFETCH = 65_535
DEFAULT_QUEUE = "task_queue"


class SettingsError(ValueError):
    """A setting that the engine refuses; the message is fit to show next to the field."""


class AckTiming(StrEnum):
    """When a manual-ack worker acknowledges a task."""

    AFTER_WORK = "after"
    BEFORE_WORK = "before"


class KillMode(StrEnum):
    """How a worker dies; each does what the real failure does to the broker."""

    CRASH = "crash"  # TCP drops with no AMQP close: the broker requeues unacked at once
    CLEAN = "clean"  # connection.close: the broker requeues unacked, politely
    HANG = "hang"  # stops reading and sending: the broker gives up at heartbeat timeout
    CANCEL = "cancel"  # basic.cancel only: no new deliveries, held messages stay with it


class QueueType(StrEnum):
    CLASSIC = "classic"
    QUORUM = "quorum"


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """The task queue as every worker and the publisher declare it."""

    name: str = DEFAULT_QUEUE
    durable: bool = True
    queue_type: QueueType = QueueType.CLASSIC

    def __post_init__(self) -> None:
        if not self.name or len(self.name.encode()) > 255:
            raise SettingsError("queue name must be 1 to 255 bytes")
        if self.queue_type is QueueType.QUORUM and not self.durable:
            raise SettingsError("a quorum queue must be durable")

    def arguments(self) -> dict[str, Any] | None:
        # A classic queue is declared with no arguments, exactly like the tutorial's worker.py,
        # so the two never disagree about x-queue-type.
        if self.queue_type is QueueType.QUORUM:
            return {"x-queue-type": "quorum"}
        return None


def validate_prefetch(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError("prefetch must be a whole number")
    if not 0 <= value <= MAX_PREFETCH:
        raise SettingsError(f"prefetch must be between 0 and {MAX_PREFETCH}")
    return value


def validate_seconds_per_dot(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SettingsError("seconds per dot must be a number")
    if not 0.0 <= float(value) <= 60.0:
        raise SettingsError("seconds per dot must be between 0 and 60")
    return float(value)


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """What a worker does with its deliveries; all of it can change while it runs."""

    # 0 = unlimited (round-robin, the tutorial's first part); 1 = fair dispatch.
    prefetch: int = 0
    auto_ack: bool = False
    ack_timing: AckTiming = AckTiming.AFTER_WORK
    # The "forgotten acknowledgment" mistake: the work is done, the ack never sent.
    forget_ack: bool = False

    def __post_init__(self) -> None:
        validate_prefetch(self.prefetch)

    def with_changes(self, **changes: Any) -> WorkerSettings:
        return replace(self, **changes)


def describe_mode(settings: WorkerSettings) -> str:
    """One line on what the settings mean: "fair dispatch: prefetch 1, manual ack after work"."""
    if settings.auto_ack:
        return "auto-ack: messages count as done when sent; prefetch does not apply"
    if settings.prefetch == 0:
        dispatch = "round-robin: prefetch 0 (unlimited)"
    elif settings.prefetch == 1:
        dispatch = "fair dispatch: prefetch 1"
    else:
        dispatch = f"prefetch {settings.prefetch}"
    if settings.forget_ack:
        return f"{dispatch}, ack forgotten (never sent)"
    return f"{dispatch}, manual ack {settings.ack_timing.value} work"


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Where the engine connects and how it behaves; the broker itself is the caller's business."""

    url: str
    # None: try http://HOST:15672 with the URL's credentials, then fall back to passive declare.
    management_url: str | None = None
    queue: QueueSpec = field(default_factory=QueueSpec)
    seconds_per_dot: float = 1.0
    # None: take the broker's heartbeat (60 s on RabbitMQ); tests use 1-2 s to see hangs quickly.
    worker_heartbeat: int | None = None
    stats_interval: float = 0.25
    publisher_confirms: bool = False
    max_body_bytes: int = MAX_BODY_BYTES
    reconnect_delay: float = 0.2
    reconnect_delay_max: float = 2.0
    connection_name: str = "tui-queue"
    # How many of its latest tasks each worker keeps for readers (Engine.recent_tasks).
    recent_length: int = 200

    def __post_init__(self) -> None:
        validate_seconds_per_dot(self.seconds_per_dot)
        if self.recent_length < 1:
            raise SettingsError("a worker keeps at least one recent task")
        if self.worker_heartbeat is not None and self.worker_heartbeat < 0:
            raise SettingsError("heartbeat must be 0 (off) or a number of seconds")
        if self.stats_interval <= 0:
            raise SettingsError("stats interval must be positive")
