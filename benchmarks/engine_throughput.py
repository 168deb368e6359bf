"""Engine workers against raw pika consumers, side by side in one run, and the engine's memory.

    python benchmarks/engine_throughput.py [--messages N] [--workers N] [--prefetch N]
                                           [--rss-messages N] [--rabbitmq | --url URL]

Zero-work tasks (no dots) go through N engine workers (ledger, events, one subscriber counting
WorkDone, as the dashboard has) and through N bare pika consumers that only ack, with the same
prefetch, on the same broker, alternately for --rounds rounds. The queue is filled first, so both
measure consumption alone. Prints msg/s for each, the ratio engine/raw (target >= 0.8), then the
process RSS while --rss-messages tasks stream through the engine: flat from the middle to the end
if the ledger's memory is bounded. Default broker: the embedded one, as a child process.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pika
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tui_queue.engine import (  # noqa: E402
    Engine,
    EngineConfig,
    Event,
    MessageAcked,
    QueueSpec,
    WorkerSettings,
)
from tui_queue.engine.broker_process import BrokerProcess  # noqa: E402

BODY = b"zero work"


@contextmanager
def broker(args: argparse.Namespace) -> Iterator[tuple[str, str | None, str]]:
    if args.url:
        yield args.url, None, "given URL"
        return
    if args.rabbitmq:
        from tests.support.rabbitmq_node import RabbitMQNode

        node = RabbitMQNode()
        node.start()
        try:
            yield node.url, node.management_url, "RabbitMQ"
        finally:
            node.kill()
            node.cleanup()
        return
    process = BrokerProcess()
    process.start()
    try:
        yield process.url, process.management_url, "embedded"
    finally:
        process.stop()


def fill(url: str, queue: str, count: int) -> None:
    """The raw consumers' tasks: the same body and properties the engine's publisher sends
    (transient, a message id), so the broker does the same work in both runs."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    channel = conn.channel()
    channel.queue_declare(queue, durable=True)
    channel.queue_purge(queue)
    for seq in range(1, count + 1):
        properties = pika.BasicProperties(delivery_mode=1, message_id=f"tq-bench0.{seq}")
        channel.basic_publish("", queue, BODY, properties)
    while channel.queue_declare(queue, passive=True).method.message_count < count:
        conn.sleep(0.05)  # the broker may still be enqueueing the tail of the burst
    conn.close()


def cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def raw_run(url: str, queue: str, count: int, workers: int, prefetch: int) -> tuple[float, float]:
    """N threads, each its own BlockingConnection, basic_consume + basic_ack: the floor."""
    fill(url, queue, count)
    lock = threading.Lock()
    done = {"n": 0}
    first: list[float] = []
    last: list[float] = []
    finished = threading.Event()
    ready = threading.Barrier(workers + 1)

    def consume() -> None:
        conn = pika.BlockingConnection(pika.URLParameters(url))
        channel = conn.channel()
        channel.basic_qos(prefetch_count=prefetch)

        def on_message(ch, method, _properties, _body) -> None:
            ch.basic_ack(method.delivery_tag)
            with lock:
                if not done["n"]:
                    first.append(time.perf_counter())  # first ack, as for the engine
                done["n"] += 1
                if done["n"] == count:
                    finished.set()
                    last.append(time.perf_counter())

        ready.wait()
        channel.basic_consume(queue, on_message)
        while not finished.is_set():
            conn.process_data_events(time_limit=0.2)
        conn.close()

    threads = [threading.Thread(target=consume) for _ in range(workers)]
    for thread in threads:
        thread.start()
    ready.wait()
    cpu = cpu_seconds()
    finished.wait()
    cpu = cpu_seconds() - cpu
    for thread in threads:
        thread.join()
    # first delivery to last ack: connection set-up is not the consumer's throughput
    return count / (last[0] - first[0]), cpu / count


class DoneCounter:
    """A minimal subscriber: counts acks (the end of a task's life, as in the raw consumer) and
    lets the benchmark wait for a count without polling. `every` subscribes it to every event
    kind instead, i.e. the engine builds all four per-message events as for the dashboard."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._counter = itertools.count(1)
        self.done = 0
        self._target = 0
        self.first: float | None = None
        self.last = 0.0

    def __call__(self, event: Event) -> None:
        if type(event) is not MessageAcked:
            return
        done = next(self._counter)  # atomic: workers call this from their own threads
        if done == 1:
            self.first = time.perf_counter()
        if done >= self._target:
            # Wake the waiter only at its target: a wake-up per message would measure the
            # GIL hand-off between threads, not the engine.
            with self._condition:
                self.done = done
                self.last = time.perf_counter()
                self._condition.notify_all()

    def wait_until(self, count: int, timeout: float = 600) -> None:
        with self._condition:
            self._target = count
            if not self._condition.wait_for(lambda: self.done >= count, timeout):
                raise TimeoutError(f"only {self.done} of {count} done")


def make_engine(
    url: str, management: str | None, queue: str, every: bool = False
) -> tuple[Engine, DoneCounter]:
    engine = Engine(
        EngineConfig(
            url=url, management_url=management, queue=QueueSpec(name=queue), seconds_per_dot=0
        )
    )
    counter = DoneCounter()
    engine.bus.subscribe(counter, kinds=None if every else (MessageAcked,))
    engine.start()
    return engine, counter


def engine_run(
    url: str,
    management: str | None,
    queue: str,
    count: int,
    workers: int,
    prefetch: int,
    every: bool = False,
) -> tuple[float, float]:
    fill(url, queue, 0)
    engine, counter = make_engine(url, management, queue, every)
    try:
        engine.publish([BODY] * count, persistent=False).wait(300)
        cpu = cpu_seconds()
        for _ in range(workers):
            engine.add_worker(WorkerSettings(prefetch=prefetch))
        counter.wait_until(count)
        cpu = cpu_seconds() - cpu
        assert engine.totals().done == count and engine.totals().lost == 0
        assert counter.first is not None
        return count / (counter.last - counter.first), cpu / count
    finally:
        engine.stop()


def rss_run(url: str, management: str | None, queue: str, total: int, workers: int) -> list[str]:
    fill(url, queue, 0)
    process = psutil.Process()
    lines = [f"RSS before the engine: {process.memory_info().rss / 1e6:.1f} MB"]
    engine, counter = make_engine(url, management, queue)
    try:
        for _ in range(workers):
            engine.add_worker(WorkerSettings(prefetch=50))
        batch = 10_000
        sent = 0
        while sent < total:
            size = min(batch, total - sent)
            engine.publish([BODY] * size, persistent=False).wait(300)
            sent += size
            counter.wait_until(sent - batch)  # at most two batches in flight
            if sent in (total // 2, total):
                counter.wait_until(sent)
                lines.append(
                    f"RSS after {sent:,} messages: {process.memory_info().rss / 1e6:.1f} MB "
                    f"(ledger: {len(engine.ledger._open)} open records, "
                    f"{len(engine.ledger._final):,} bytes of finished states)"
                )
        totals = engine.totals()
        lines.append(f"done {totals.done:,}, lost {totals.lost}, duplicates {totals.duplicates}")
    finally:
        engine.stop()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--prefetch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rss-messages", type=int, default=100_000)
    parser.add_argument("--rabbitmq", action="store_true", help="start a private RabbitMQ node")
    parser.add_argument("--url", default=None, help="an AMQP broker to use instead")
    args = parser.parse_args()
    with broker(args) as (url, management, name):
        queue = f"tq-bench-{uuid.uuid4().hex[:6]}"
        print(
            f"broker: {name}; {args.messages:,} zero-work tasks, {args.workers} consumers, "
            f"prefetch {args.prefetch}, {args.rounds} rounds"
        )
        runs: dict[str, list[tuple[float, float]]] = {"raw": [], "engine": [], "every": []}
        for round_number in range(1, args.rounds + 1):
            runs["raw"].append(raw_run(url, queue, args.messages, args.workers, args.prefetch))
            for name, every in (("engine", False), ("every", True)):
                runs[name].append(
                    engine_run(
                        url, management, queue, args.messages, args.workers, args.prefetch, every
                    )
                )
            print(
                f"  round {round_number}: "
                + "   ".join(
                    f"{name} {runs[name][-1][0]:6.0f} msg/s ({runs[name][-1][1] * 1e6:3.0f} us)"
                    for name in runs
                )
            )
        labels = {
            "raw": "raw pika consumers",
            "engine": "engine workers",
            "every": "engine, all events",
        }
        raw_rates = [rate for rate, _cpu in runs["raw"]]
        for name, label in labels.items():
            rate = statistics.median(r for r, _c in runs[name])
            cpu = statistics.median(c for _r, c in runs[name]) * 1e6
            # Each round's runs are back to back: their ratio cancels most of a shared
            # machine's drift, so the median of the per-round ratios is the number to read.
            ratio = statistics.median(
                r / raw for (r, _c), raw in zip(runs[name], raw_rates, strict=True)
            )
            print(f"{label:20} {rate:7.0f} msg/s  {cpu:4.0f} us client CPU/msg  ratio {ratio:.2f}")
        print("target: engine workers / raw pika consumers >= 0.80")
        for line in rss_run(url, management, queue, args.rss_messages, args.workers):
            print(line)
        conn = pika.BlockingConnection(pika.URLParameters(url))
        conn.channel().queue_delete(queue)
        conn.close()


if __name__ == "__main__":
    main()
