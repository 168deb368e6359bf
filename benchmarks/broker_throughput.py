"""Embedded broker vs RabbitMQ, side by side in one run, with the same pika workload.

    python benchmarks/broker_throughput.py [--messages N] [--queued N]

Prints msg/s for each broker and the ratio embedded/RabbitMQ, then start-to-ready time and the
broker's RSS with 100k queued 1 KiB messages. Absolute numbers drift on a shared machine; the
ratios, measured back to back in one run, are what to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pika
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.rabbitmq_node import RabbitMQNode, rabbitmq_installed  # noqa: E402

URL_LINE = re.compile(rb"amqp://([^:\s]+):(\d+)")


@dataclass
class Target:
    name: str
    url: str
    pid: int

    def rss_mb(self) -> float:
        process = psutil.Process(self.pid)
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += child.memory_info().rss
        return total / 1e6


class EmbeddedProcess:
    """The embedded broker in its own interpreter with a durable store, as the app runs it."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.started_in = 0.0
        self.data_dir = Path(tempfile.mkdtemp(prefix="tq-bench-"))
        self.port = 0

    def start(self) -> None:
        began = time.perf_counter()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tui_queue",
                "broker",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        self.started_in = time.perf_counter() - began
        match = URL_LINE.search(line)
        if not match:
            raise RuntimeError(f"embedded broker printed {line!r}")
        host, port = match.group(1).decode(), match.group(2).decode()
        self.port = int(port)
        self.url = f"amqp://guest:guest@{host}:{port}/%2F"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None

    def restart(self) -> float:
        self.stop()
        self.start()
        return self.started_in

    def disk_bytes(self) -> int:
        return directory_bytes(self.data_dir)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def queue_name() -> str:
    return f"bench-{uuid.uuid4().hex[:8]}"


def connect(url: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(url))


def fill(url: str, queue: str, count: int, body: bytes, persistent: bool = False) -> None:
    connection = connect(url)
    channel = connection.channel()
    properties = pika.BasicProperties(delivery_mode=2 if persistent else 1)
    for _ in range(count):
        channel.basic_publish("", queue, body, properties)
    # A synchronous round trip: everything before it has reached the broker.
    while channel.queue_declare(queue, passive=True).method.message_count < count:
        connection.process_data_events(time_limit=0.01)
    connection.close()


def bench_publish_persistent(url: str, n: int) -> float:
    connection = connect(url)
    channel = connection.channel()
    queue = queue_name()
    channel.queue_declare(queue, durable=True)
    properties = pika.BasicProperties(delivery_mode=2)
    body = b"x" * 100
    began = time.perf_counter()
    for _ in range(n):
        channel.basic_publish("", queue, body, properties)
    while channel.queue_declare(queue, durable=True, passive=True).method.message_count < n:
        connection.process_data_events(time_limit=0.005)
    elapsed = time.perf_counter() - began
    channel.queue_delete(queue)
    connection.close()
    return n / elapsed


def bench_publish_confirms(url: str, n: int) -> float:
    connection = connect(url)
    channel = connection.channel()
    queue = queue_name()
    channel.queue_declare(queue)
    channel.confirm_delivery()
    body = b"x" * 100
    began = time.perf_counter()
    for _ in range(n):
        channel.basic_publish("", queue, body)
    elapsed = time.perf_counter() - began
    channel.queue_delete(queue)
    connection.close()
    return n / elapsed


def bench_persistent_confirms(url: str, n: int) -> float:
    """One publisher, one confirm waited per message, as BlockingConnection does."""
    connection = connect(url)
    channel = connection.channel()
    queue = queue_name()
    channel.queue_declare(queue, durable=True)
    channel.confirm_delivery()
    properties = pika.BasicProperties(delivery_mode=2)
    body = b"x" * 100
    began = time.perf_counter()
    for _ in range(n):
        channel.basic_publish("", queue, body, properties)
    elapsed = time.perf_counter() - began
    channel.queue_delete(queue)
    connection.close()
    return n / elapsed


def bench_persistent_confirms_windowed(url: str, n: int, window: int = 100) -> float:
    """Up to `window` confirms outstanding at once (pika's callback API)."""
    queue = queue_name()
    setup = connect(url)
    setup.channel().queue_declare(queue, durable=True)
    setup.close()
    properties = pika.BasicProperties(delivery_mode=2)
    body = b"x" * 100
    state = {"sent": 0, "confirmed": 0, "began": 0.0, "elapsed": 0.0}

    def on_open(connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=on_channel)

    def on_channel(channel) -> None:
        channel.confirm_delivery(lambda frame: on_confirm(channel, frame))
        state["began"] = time.perf_counter()
        publish_more(channel)

    def publish_more(channel) -> None:
        while state["sent"] < n and state["sent"] - state["confirmed"] < window:
            channel.basic_publish("", queue, body, properties)
            state["sent"] += 1

    def on_confirm(channel, frame) -> None:
        method = frame.method
        if method.multiple:
            state["confirmed"] = method.delivery_tag
        else:
            state["confirmed"] += 1
        if state["confirmed"] >= n:
            state["elapsed"] = time.perf_counter() - state["began"]
            channel.connection.close()
        else:
            publish_more(channel)

    connection = pika.SelectConnection(
        pika.URLParameters(url),
        on_open_callback=on_open,
        on_close_callback=lambda *_: connection.ioloop.stop(),
    )
    connection.ioloop.start()
    cleanup = connect(url)
    cleanup.channel().queue_delete(queue)
    cleanup.close()
    return n / state["elapsed"]


def stored_then_restarted(
    target: Target, disk_bytes: Callable[[], int], restart: Callable[[], float], count: int
) -> tuple[float, float]:
    """Disk taken by `count` persistent 1 KiB messages, then the time to restart with them.

    Ready means the messages are back, not just the port. Run on a fresh broker, so the
    growth is the store's own.
    """
    before = disk_bytes()
    queue = queue_name()
    connection = connect(target.url)
    connection.channel().queue_declare(queue, durable=True)
    connection.close()
    fill(target.url, queue, count, os.urandom(1024), persistent=True)
    connection = connect(target.url)
    channel = connection.channel()
    channel.confirm_delivery()
    # A confirmed persistent publish: everything before it is on disk too.
    channel.basic_publish("", queue, b"sync", pika.BasicProperties(delivery_mode=2))
    connection.close()
    grown = (disk_bytes() - before) / 1e6
    took = restart()
    connection = connect(target.url)
    channel = connection.channel()
    while channel.queue_declare(queue, durable=True, passive=True).method.message_count < count:
        connection.process_data_events(time_limit=0.05)
    took_until_ready = took
    channel.queue_delete(queue)
    connection.close()
    return grown, took_until_ready


def bench_consume(url: str, n: int, prefetch: int, auto_ack: bool) -> float:
    queue = queue_name()
    setup = connect(url)
    setup.channel().queue_declare(queue)
    setup.close()
    fill(url, queue, n, b"x" * 100)
    connection = connect(url)
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)
    received = 0

    def on_message(ch, method, _props, _body) -> None:
        nonlocal received
        received += 1
        if not auto_ack:
            ch.basic_ack(method.delivery_tag)

    began = time.perf_counter()
    channel.basic_consume(queue, on_message, auto_ack=auto_ack)
    while received < n:
        connection.process_data_events(time_limit=1)
    elapsed = time.perf_counter() - began
    channel.queue_delete(queue)
    connection.close()
    return n / elapsed


def rss_with_queued(target: Target, count: int) -> float:
    queue = queue_name()
    connection = connect(target.url)
    connection.channel().queue_declare(queue)
    connection.close()
    before = target.rss_mb()
    fill(target.url, queue, count, os.urandom(1024))
    after = target.rss_mb()
    connection = connect(target.url)
    connection.channel().queue_delete(queue)
    connection.close()
    print(f"    {target.name}: RSS {before:.0f} MB idle -> {after:.0f} MB with {count} queued")
    return after


def rabbitmq_start_time() -> tuple[RabbitMQNode, float]:
    node = RabbitMQNode()
    began = time.perf_counter()
    node.start()
    return node, time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--only", default="", help="run only the throughput rows whose name contains this"
    )
    args = parser.parse_args()
    if not rabbitmq_installed():
        print("RabbitMQ is not installed (apt-get install -y rabbitmq-server)", file=sys.stderr)
        return 1
    embedded = EmbeddedProcess()
    embedded.start()
    node, rabbit_start = rabbitmq_start_time()
    assert embedded.process is not None and node.process is not None
    targets = [
        Target("embedded", embedded.url, embedded.process.pid),
        Target("rabbitmq", node.url, node.process.pid),
    ]
    n = args.messages
    rows: list[tuple[str, Callable[[str], float]]] = [
        ("publish persistent", lambda url: bench_publish_persistent(url, n)),
        ("consume prefetch=1, ack", lambda url: bench_consume(url, n // 4, 1, False)),
        ("consume prefetch=100, ack", lambda url: bench_consume(url, n, 100, False)),
        ("consume auto-ack", lambda url: bench_consume(url, n, 0, True)),
        ("publish with confirms", lambda url: bench_publish_confirms(url, n // 4)),
        ("persistent, confirm each", lambda url: bench_persistent_confirms(url, n // 10)),
        ("persistent, confirms x100", lambda url: bench_persistent_confirms_windowed(url, n)),
    ]
    rows = [(label, run) for label, run in rows if args.only in label]
    print(f"{'workload':28} {'embedded':>12} {'rabbitmq':>12} {'ratio':>7}")
    try:
        for label, run in rows:
            results = {t.name: 0.0 for t in targets}
            for _ in range(args.repeat):
                # Alternate the order so neither broker always runs on a warmer machine.
                for target in targets:
                    results[target.name] = max(results[target.name], run(target.url))
                targets.reverse()
            ratio = results["embedded"] / results["rabbitmq"]
            print(
                f"{label:28} {results['embedded']:>8.0f} m/s {results['rabbitmq']:>8.0f} m/s "
                f"{ratio:>7.2f}"
            )
        if args.only:
            return 0
        print(
            f"{'start to ready':28} {embedded.started_in:>10.2f} s {rabbit_start:>10.2f} s "
            f"{embedded.started_in / rabbit_start:>7.3f}"
        )
        print(f"RSS with {args.queued} queued 1 KiB messages:")
        rss = {t.name: rss_with_queued(t, args.queued) for t in targets}
        print(
            f"{'RSS, queued messages':28} {rss['embedded']:>9.0f} MB {rss['rabbitmq']:>9.0f} MB "
            f"{rss['embedded'] / rss['rabbitmq']:>7.2f}"
        )

        def rabbit_restart() -> float:
            began = time.perf_counter()
            node.stop()
            node.start()
            return time.perf_counter() - began

        stored = args.queued
        embedded_disk, embedded_restart = stored_then_restarted(
            targets[0] if targets[0].name == "embedded" else targets[1],
            embedded.disk_bytes,
            embedded.restart,
            stored,
        )
        rabbit_disk, rabbit_restart_took = stored_then_restarted(
            targets[0] if targets[0].name == "rabbitmq" else targets[1],
            lambda: directory_bytes(node.base_dir),
            rabbit_restart,
            stored,
        )
        label = f"{stored // 1000}k stored 1 KiB"
        print(
            f"{'disk, ' + label:28} {embedded_disk:>9.0f} MB {rabbit_disk:>9.0f} MB "
            f"{embedded_disk / rabbit_disk:>7.2f}"
        )
        print(
            f"{'restart, ' + label:28} {embedded_restart:>10.2f} s "
            f"{rabbit_restart_took:>10.2f} s {embedded_restart / rabbit_restart_took:>7.3f}"
        )
    finally:
        embedded.cleanup()
        node.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
