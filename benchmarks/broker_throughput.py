"""Embedded broker vs RabbitMQ, side by side in one run, with the same pika workload.

    python benchmarks/broker_throughput.py [--messages N] [--queued N]

Prints msg/s for each broker and the ratio embedded/RabbitMQ, then start-to-ready time and the
broker's RSS with 100k queued 1 KiB messages. Absolute numbers drift on a shared machine; the
ratios, measured back to back in one run, are what to compare.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
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
            try:
                total += child.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total / 1e6


class EmbeddedProcess:
    """The embedded broker in its own interpreter, as the app runs it."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.started_in = 0.0

    def start(self) -> None:
        began = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tui_queue", "broker", "--port", "0"],
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
        self.url = f"amqp://guest:guest@{host}:{port}/%2F"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


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
    ]
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
    finally:
        embedded.stop()
        node.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
