"""The tutorial's own programs, new_task.py and worker.py, with the same queue, flags and lines."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import pika
import pika.exceptions

from tui_queue.engine.config import QueueSpec, WorkerSettings
from tui_queue.engine.connect import BrokerConnectError, declare_queue, one_off_channel
from tui_queue.engine.engine import QueueMismatch, check_queue
from tui_queue.engine.events import Event, EventBus, WorkDone, WorkStarted
from tui_queue.engine.ledger import Ledger
from tui_queue.engine.publisher import encode_bodies
from tui_queue.engine.tasks import task_body
from tui_queue.engine.worker import Worker, WorkerConnection


def new_task(url: str, words: Sequence[str], queue: QueueSpec, persistent: bool = True) -> str:
    """Publish one task exactly as new_task.py does; returns the message sent."""
    message = task_body(words)
    encode_bodies([message])  # refuses an oversized task before connecting
    with one_off_channel(url, "tui-queue new-task") as channel:
        try:
            declare_queue(channel, queue)
        except pika.exceptions.ChannelClosedByBroker as error:
            raise QueueMismatch(f"queue {queue.name!r}: {error.reply_text}") from None
        channel.basic_publish(
            exchange="",
            routing_key=queue.name,
            body=message.encode(),
            properties=pika.BasicProperties(delivery_mode=2 if persistent else 1),
        )
    return message


def run_worker(url: str, queue: QueueSpec, prefetch: int = 1, seconds_per_dot: float = 1.0) -> int:
    """worker.py: prefetch 1, ack after the work, one second per dot; until Ctrl+C."""
    check_queue(url, queue)  # a clear error now, instead of a worker retrying in silence
    bus = EventBus()
    bus.subscribe(_print_tutorial_lines)
    worker = Worker(
        "worker",
        WorkerConnection(url=url, connection_name="tui-queue worker"),
        lambda: queue,
        Ledger(),
        bus,
        settings=WorkerSettings(prefetch=prefetch),
        seconds_per_dot=seconds_per_dot,
    )
    print(" [*] Waiting for messages. To exit press CTRL+C", flush=True)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    worker.start()
    try:
        stop.wait()  # only a signal ends this
    except KeyboardInterrupt:
        print("Interrupted", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        worker.stop()
    return 0


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _print_tutorial_lines(event: Event) -> None:
    # worker.py prints Received when its callback starts the task, so we do too.
    if isinstance(event, WorkStarted):
        print(f" [x] Received {event.body!r}", flush=True)
    elif isinstance(event, WorkDone):
        print(" [x] Done", flush=True)


def fail(message: str) -> int:
    print(f"tui-queue: {message}", file=sys.stderr)
    return 1


__all__ = ["BrokerConnectError", "fail", "new_task", "run_worker"]
