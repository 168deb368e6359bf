"""What the dashboard is asked to do at start: where the broker is, how many workers, how fast."""

from __future__ import annotations

from dataclasses import dataclass

from tui_queue.engine import QueueSpec, QueueType, SettingsError
from tui_queue.engine.config import (
    DEFAULT_QUEUE,
    MAX_BODY_BYTES,
    validate_prefetch,
    validate_seconds_per_dot,
)

TUTORIAL_PORT = 5672
MAX_WORKERS = 16


@dataclass(frozen=True, slots=True)
class LabOptions:
    """Validated on creation; a bad value raises SettingsError with a one-line message."""

    url: str | None = None
    """A broker to use (`--url`); None starts the embedded broker as a child process."""
    management_url: str | None = None
    """Management API of the `--url` broker; None: http://HOST:15672, or passive declare."""
    workers: int = 2
    prefetch: int = 0
    """Every worker's prefetch at start: 0 = unlimited, as in the tutorial's first part."""
    seconds_per_dot: float = 1.0
    queue: str = DEFAULT_QUEUE
    queue_type: QueueType = QueueType.CLASSIC
    data_dir: str | None = None
    """Embedded broker's store; None: a temporary directory removed at exit."""
    broker_port: int | None = None
    """Embedded broker's AMQP port; None: 5672 when free (so the tutorial's own programs reach
    it), else any free port."""
    heartbeat: int = 5
    """Worker heartbeat in seconds: short, so a hung worker is dropped within a demo's patience."""
    max_task_bytes: int = MAX_BODY_BYTES
    list_length: int = 200
    """Entries kept per Received/Done list; totals beside them stay exact."""
    show_log: bool = False
    stable_screen: bool = False
    """For tests and snapshots: nothing on screen that depends on timing or on the machine
    (no port numbers, rates or backlog history; no cursor blink)."""

    def __post_init__(self) -> None:
        if not 0 <= self.workers <= MAX_WORKERS:
            raise SettingsError(f"workers must be between 0 and {MAX_WORKERS}")
        validate_prefetch(self.prefetch)
        validate_seconds_per_dot(self.seconds_per_dot)
        if self.broker_port is not None and not 0 <= self.broker_port <= 65_535:
            raise SettingsError("broker port must be between 0 and 65535")
        if self.max_task_bytes < 1:
            raise SettingsError("the task size limit must be at least 1 byte")
        if self.list_length < 1:
            raise SettingsError("lists must keep at least one entry")
        self.queue_spec()  # validates the queue name

    def queue_spec(self) -> QueueSpec:
        return QueueSpec(name=self.queue, queue_type=self.queue_type)
