"""Engine tests run on both brokers: the embedded one (as the app runs it, a child process) and a
private RabbitMQ node, one of each per test session.

`engine_broker` is parametrized `embedded` / `rabbitmq`; each gives a URL, a management URL and a
BrokerControl that can restart it (the durability scenario needs that).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.support.rabbitmq_node import RabbitMQNode, rabbitmq_installed
from tui_queue.engine import (
    BrokerControl,
    Engine,
    EngineConfig,
    EventWaiter,
    QueueSpec,
    StatsUpdated,
    WorkerSettings,
    WorkerState,
)
from tui_queue.engine.broker_process import BrokerProcess
from tui_queue.engine.connect import connect

KINDS = ["embedded", "rabbitmq"]


class RabbitMQControl:
    """BrokerControl over a test RabbitMQ node: same ports, same data dir across restarts."""

    def __init__(self, node: RabbitMQNode) -> None:
        self.node = node

    @property
    def url(self) -> str:
        return self.node.url

    @property
    def management_url(self) -> str | None:
        return self.node.management_url

    @property
    def is_embedded(self) -> bool:
        return False

    @property
    def durable_store(self) -> bool:
        return True

    def restart(self, kill: bool) -> None:
        self.node.restart(kill)


@dataclass
class BrokerUnderTest:
    kind: str
    control: BrokerControl

    @property
    def url(self) -> str:
        return self.control.url

    @property
    def management_url(self) -> str | None:
        return self.control.management_url


def _embedded_available() -> str | None:
    """Why the embedded broker cannot run yet, or None."""
    probe = subprocess.run(
        [sys.executable, "-c", "from tui_queue.broker import BrokerThread"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return "the embedded broker (tui_queue.broker.BrokerThread) does not exist yet"
    return None


@pytest.fixture(scope="session")
def rabbitmq_control() -> Iterator[RabbitMQControl]:
    if not rabbitmq_installed():
        message = "rabbitmq-server is not installed (/usr/lib/rabbitmq/bin/rabbitmq-server)"
        if os.environ.get("TUI_QUEUE_REQUIRE_RABBITMQ") == "1":
            pytest.fail(f"TUI_QUEUE_REQUIRE_RABBITMQ=1 but {message}", pytrace=False)
        pytest.skip(message)
    node = RabbitMQNode()
    node.start()
    try:
        yield RabbitMQControl(node)
    finally:
        node.kill()  # a clean stop takes RabbitMQ ~7 s; nothing of this node is kept
        node.cleanup()


@pytest.fixture(scope="session")
def embedded_control() -> Iterator[BrokerProcess]:
    reason = _embedded_available()
    if reason is not None:
        pytest.skip(reason)
    process = BrokerProcess()
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(params=KINDS)
def engine_broker(request: pytest.FixtureRequest) -> BrokerUnderTest:
    if request.param == "rabbitmq":
        return BrokerUnderTest("rabbitmq", request.getfixturevalue("rabbitmq_control"))
    return BrokerUnderTest("embedded", request.getfixturevalue("embedded_control"))


@pytest.fixture
def queue_name(engine_broker: BrokerUnderTest) -> Iterator[str]:
    """A queue of this test's own, deleted afterwards."""
    name = f"tq-test-{secrets.token_hex(4)}"
    yield name
    try:
        conn = connect(engine_broker.url)
        conn.channel().queue_delete(name)
        conn.close()
    except Exception:  # a test that restarted or broke the broker: nothing to clean then
        pass


class EngineHarness:
    """An engine on a test queue with an event recorder; stop() proves every thread ended."""

    def __init__(self, broker: BrokerUnderTest, queue: str, **config: object) -> None:
        settings = {
            "management_url": broker.management_url,
            "seconds_per_dot": 0.05,
            "stats_interval": 0.1,
            **config,
        }
        self.broker = broker
        self.engine = Engine(
            EngineConfig(
                url=broker.url,
                queue=QueueSpec(name=queue),
                **settings,  # type: ignore[arg-type]
            ),
            control=broker.control,
        )
        self.events = EventWaiter(self.engine.bus, keep=lambda e: not isinstance(e, StatsUpdated))
        self.engine.start()

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        assert self.events.wait_for(predicate, timeout), f"timed out waiting for {what}"

    def add(self, settings: WorkerSettings | None = None) -> str:
        name = self.engine.add_worker(settings)
        self.wait_state(name, WorkerState.IDLE)
        return name

    def wait_state(self, name: str, state: WorkerState, timeout: float = 20.0) -> None:
        self.wait(lambda: self.engine.worker(name).state is state, f"{name} {state}", timeout)

    def stop(self) -> None:
        before = {t.name for t in threading.enumerate()}
        assert self.engine.stop(), f"threads still alive: {self.engine.threads_alive()}"
        self.events.close()
        leftovers = [t.name for t in threading.enumerate() if t.name.startswith("tq-")]
        leftovers = [n for n in leftovers if n != "tq-broker-output"]
        assert not leftovers, f"engine threads left after stop(): {leftovers} (before: {before})"


@pytest.fixture
def harness(
    engine_broker: BrokerUnderTest, queue_name: str
) -> Iterator[Callable[..., EngineHarness]]:
    made: list[EngineHarness] = []

    def make(**config: object) -> EngineHarness:
        made.append(EngineHarness(engine_broker, queue_name, **config))
        return made[-1]

    yield make
    for item in made:
        item.stop()
