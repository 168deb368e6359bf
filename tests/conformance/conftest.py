"""The differential fixture: every conformance test runs once per broker.

`broker` is parametrized over `embedded` (tui_queue's own broker on a thread) and `rabbitmq` (one
private RabbitMQ node per test session, the oracle). Both expose the same small handle, so a test
never needs to know which broker it talks to.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.conformance.helpers import BrokerHandle
from tests.support.rabbitmq_node import RabbitMQNode, free_port, rabbitmq_installed

BROKERS = ["embedded", "rabbitmq"]

#: consumer_timeout settings for the timeout module: small enough to observe in a test.
TIMEOUT_MS = 2000
TICK_MS = 500
#: How often the session node refreshes its management stats (RabbitMQ's default is 5 s).
STATS_INTERVAL_MS = 500

EMBEDDED_GAP = "embedded broker: not implemented yet"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "embedded_gap(reason): RabbitMQ behaviour the embedded broker lacks; the embedded "
        "param of the test is xfail(strict=True) until it is implemented",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`@pytest.mark.embedded_gap` turns into a strict xfail on the embedded param only."""
    for item in items:
        marker = item.get_closest_marker("embedded_gap")
        callspec = getattr(item, "callspec", None)
        if marker is None or callspec is None or callspec.params.get("broker") != "embedded":
            continue
        reason = marker.args[0] if marker.args else EMBEDDED_GAP
        item.add_marker(pytest.mark.xfail(strict=True, reason=reason))


def _require_rabbitmq() -> None:
    if rabbitmq_installed():
        return
    message = "rabbitmq-server is not installed (/usr/lib/rabbitmq/bin/rabbitmq-server missing)"
    if os.environ.get("TUI_QUEUE_REQUIRE_RABBITMQ") == "1":
        pytest.fail(f"TUI_QUEUE_REQUIRE_RABBITMQ=1 but {message}", pytrace=False)
    pytest.skip(message)


def nonloopback_address() -> str | None:
    """An IPv4 address of this machine that is not 127/8, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent for UDP connect
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    if address.startswith("127.") or address == "0.0.0.0":
        return None
    return address


class _NodeWithExtraListener(RabbitMQNode):
    """A RabbitMQNode that also listens on a non-loopback address (for the loopback-user rule)."""

    extra_address: str | None = None
    extra_port: int | None = None

    def _environment(self) -> dict[str, str]:
        env = super()._environment()
        if self.extra_address is not None:
            if self.extra_port is None:
                self.extra_port = free_port()
            conf = self.base_dir / "rabbitmq.conf"
            conf.write_text(
                conf.read_text() + f"listeners.tcp.extra = {self.extra_address}:{self.extra_port}\n"
            )
            # These two would override the listeners of the config file.
            env.pop("RABBITMQ_NODE_IP_ADDRESS", None)
            env.pop("RABBITMQ_NODE_PORT", None)
        return env


def _discard_node(node: RabbitMQNode) -> None:
    """Throw a test node away: SIGKILL (its data dir is deleted anyway), then clean up."""
    node.kill()
    node.cleanup()


def _start_node(node: RabbitMQNode) -> RabbitMQNode:
    try:
        node.start()
    except BaseException:
        _discard_node(node)
        raise
    return node


@pytest.fixture(scope="session")
def rabbitmq_node() -> Iterator[RabbitMQNode]:
    _require_rabbitmq()
    # Management stats every 0.5 s and their aggregation every 1 s instead of 5 s, so that
    # management tests see a known state quickly.
    node = _NodeWithExtraListener(
        collect_statistics_interval_ms=STATS_INTERVAL_MS, management_sample_s=1
    )
    node.extra_address = nonloopback_address()
    _start_node(node)
    try:
        # Quorum queues read their metrics tick when declared. It is set on the running node:
        # in advanced.config it changed the order of the auth mechanisms offered (PLAIN
        # AMQPLAIN became AMQPLAIN PLAIN), which test_handshake checks.
        node.set_app_env("rabbit", "quorum_tick_interval", str(STATS_INTERVAL_MS))
        yield node
    finally:
        _discard_node(node)


def _start_embedded(**config: Any) -> Any:
    from tui_queue.broker import BrokerConfig, BrokerThread

    thread = BrokerThread(BrokerConfig(**config))
    thread.start()
    return thread


@pytest.fixture(scope="session")
def embedded_broker() -> Iterator[Any]:
    thread = _start_embedded(port=0, management_port=0)
    try:
        yield thread
    finally:
        thread.stop()


def _rabbitmq_handle(node: RabbitMQNode) -> BrokerHandle:
    @contextmanager
    def nonloopback() -> Iterator[tuple[str, int]]:
        address = getattr(node, "extra_address", None)
        port = getattr(node, "extra_port", None)
        if address is None or port is None:
            pytest.skip("this machine has no non-loopback IPv4 address")
        yield address, port

    return BrokerHandle(
        name="rabbitmq",
        host="127.0.0.1",
        port=node.amqp_port,
        management_url=node.management_url,
        nonloopback=nonloopback,
        extra={"node": node},
    )


def _embedded_handle(thread: Any) -> BrokerHandle:
    @contextmanager
    def nonloopback() -> Iterator[tuple[str, int]]:
        address = nonloopback_address()
        if address is None:
            pytest.skip("this machine has no non-loopback IPv4 address")
        extra = _start_embedded(host=address, port=0)
        try:
            yield address, extra.amqp_port
        finally:
            extra.stop()

    return BrokerHandle(
        name="embedded",
        host="127.0.0.1",
        port=thread.amqp_port,
        management_url=thread.management_url,
        nonloopback=nonloopback,
        extra={"thread": thread},
    )


@pytest.fixture(params=BROKERS, ids=BROKERS)
def broker(request: pytest.FixtureRequest) -> BrokerHandle:
    if request.param == "rabbitmq":
        return _rabbitmq_handle(request.getfixturevalue("rabbitmq_node"))
    return _embedded_handle(request.getfixturevalue("embedded_broker"))


# -- brokers with a short consumer_timeout (one per module that asks for them) ----------------


@pytest.fixture(scope="module")
def rabbitmq_timeout_node() -> Iterator[RabbitMQNode]:
    _require_rabbitmq()
    node = _start_node(RabbitMQNode(consumer_timeout_ms=TIMEOUT_MS, channel_tick_ms=TICK_MS))
    try:
        yield node
    finally:
        _discard_node(node)


@pytest.fixture(scope="module")
def embedded_timeout_broker() -> Iterator[Any]:
    thread = _start_embedded(port=0, consumer_timeout_ms=TIMEOUT_MS, channel_tick_ms=TICK_MS)
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def timeout_broker(broker: BrokerHandle, request: pytest.FixtureRequest) -> BrokerHandle:
    """Same broker kind as `broker`, but with consumer_timeout=2000 ms and a 500 ms tick."""
    if broker.name == "rabbitmq":
        node = request.getfixturevalue("rabbitmq_timeout_node")
        return BrokerHandle("rabbitmq", "127.0.0.1", node.amqp_port, node.management_url)
    thread = request.getfixturevalue("embedded_timeout_broker")
    return BrokerHandle("embedded", "127.0.0.1", thread.amqp_port, None)


# -- a private broker that a test may shut down ------------------------------------------------


@pytest.fixture
def private_broker(broker: BrokerHandle) -> Iterator[tuple[BrokerHandle, Callable[[], None]]]:
    """A fresh broker of the same kind plus a function that shuts it down gracefully."""
    if broker.name == "rabbitmq":
        node = _start_node(RabbitMQNode())
        try:
            yield (
                BrokerHandle("rabbitmq", "127.0.0.1", node.amqp_port, node.management_url),
                node.stop,
            )
        finally:
            node.cleanup()
        return
    thread = _start_embedded(port=0)
    try:
        yield BrokerHandle("embedded", "127.0.0.1", thread.amqp_port, None), thread.stop
    finally:
        thread.stop()
