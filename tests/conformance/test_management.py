"""The management HTTP API subset the app reads: overview, queue list, one queue, auth, 404.

RabbitMQ's numbers lag (stats every 0.5 s on the session node, aggregated every second), so each
test drives the broker into a known state and then awaits the documents with a deadline.
"""

from __future__ import annotations

import datetime
import decimal
from typing import Any

import pytest

from tests.conformance.helpers import (
    QUEUE_TYPES,
    BrokerHandle,
    await_management,
    connection,
    delete_queue,
    make_consumer,
    management_get,
    pump,
    unique,
)

#: The queue fields the app reads (tui_queue.engine.stats) plus the identifying ones.
QUEUE_FIELDS = (
    "name",
    "vhost",
    "type",
    "durable",
    "auto_delete",
    "exclusive",
    "arguments",
    "consumers",
    "messages",
    "messages_ready",
    "messages_unacknowledged",
)
COUNTERS = (
    "publish",
    "deliver",
    "deliver_no_ack",
    "get",
    "get_no_ack",
    "get_empty",
    "ack",
    "redeliver",
    "deliver_get",
)
AUTH_REALM = 'Basic realm="RabbitMQ Management"'
NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}


def _queue_path(name: str) -> str:
    return f"/api/queues/%2F/{name}"


def _fields(document: dict[str, Any]) -> dict[str, Any]:
    return {field: document.get(field, "ABSENT") for field in QUEUE_FIELDS}


def _counters(document: dict[str, Any]) -> dict[str, Any] | str:
    stats = document.get("message_stats")
    if stats is None:
        return "ABSENT"
    return {name: stats.get(name, "ABSENT") for name in COUNTERS}


def _view(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | str]:
    return _fields(document), _counters(document)


def _in_list(name: str) -> Any:
    def view(documents: list[dict[str, Any]]) -> Any:
        found = [_view(d) for d in documents if d.get("name") == name]
        return found[0] if len(found) == 1 else ("matches", len(found))

    return view


@pytest.fixture(autouse=True)
def _needs_management(broker: BrokerHandle) -> None:
    assert broker.management_url is not None


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
def test_queue_document_after_known_sequence(broker: BrokerHandle, queue_type: str) -> None:
    """7 published; a get that is nacked back, a get that is acked, a no-ack get; consumer A
    (prefetch 3) takes 3 and acks one, so it gets a fourth; consumer B (prefetch 1) takes one;
    2 more published. Whatever the queue type's requeue order, exactly one delivery is a
    redelivery, 2 are ready, 4 unacked."""
    name = unique("mgmt")
    arguments = {"x-queue-type": queue_type, "x-app": "tui", "x-count": 7}
    with connection(broker) as conn_a, connection(broker) as conn_b:
        channel = conn_a.channel()
        channel.queue_declare(name, durable=True, arguments=arguments)
        try:
            channel.confirm_delivery()
            for i in range(1, 8):
                channel.basic_publish("", name, f"m{i}".encode())
            method, _, _ = channel.basic_get(name)
            channel.basic_nack(method.delivery_tag, requeue=True)
            method, _, _ = channel.basic_get(name)
            channel.basic_ack(method.delivery_tag)
            assert channel.basic_get(name, auto_ack=True)[0] is not None
            consumer_a = make_consumer(conn_a, prefetch=3).start(name)
            assert pump([conn_a], lambda: len(consumer_a.received) == 3)
            consumer_a.channel.basic_ack(consumer_a.received[0].delivery_tag)
            assert pump([conn_a], lambda: len(consumer_a.received) == 4)
            consumer_b = make_consumer(conn_b, prefetch=1).start(name)
            assert pump([conn_b], lambda: len(consumer_b.received) == 1)
            for i in (8, 9):
                channel.basic_publish("", name, f"m{i}".encode())

            expected = (
                {
                    "name": name,
                    "vhost": "/",
                    "type": queue_type,
                    "durable": True,
                    "auto_delete": False,
                    "exclusive": False,
                    "arguments": {"x-queue-type": queue_type, "x-app": "tui", "x-count": 7},
                    "consumers": 2,
                    "messages": 6,
                    "messages_ready": 2,
                    "messages_unacknowledged": 4,
                },
                {
                    "publish": 9,
                    "deliver": 5,
                    "deliver_no_ack": 0,
                    "get": 2,
                    "get_no_ack": 1,
                    "get_empty": 0,
                    "ack": 2,
                    "redeliver": 1,
                    "deliver_get": 8,
                },
            )
            assert await_management(broker, _queue_path(name), _view, expected) == expected
            # The list views carry the same numbers for the queue.
            assert await_management(broker, "/api/queues", _in_list(name), expected) == expected
            assert await_management(broker, "/api/queues/%2F", _in_list(name), expected) == (
                expected
            )
            document = management_get(broker, _queue_path(name)).json()
            rates = {
                key: type(document["message_stats"][f"{key}_details"]["rate"]).__name__
                for key in ("publish", "deliver_get", "ack")
            }
            assert rates == {"publish": "float", "deliver_get": "float", "ack": "float"}
        finally:
            delete_queue(broker, name)


def test_queue_flags_and_idle_queue(broker: BrokerHandle) -> None:
    """An exclusive auto-delete server-named queue with one consumer and a transient queue:
    flags as declared, and no message_stats at all while nothing was published or taken."""
    transient = unique("mgmt-t")
    with connection(broker) as conn:
        channel = conn.channel()
        exclusive = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        channel.queue_declare(transient, durable=False)
        try:
            channel.basic_consume(exclusive, lambda *_: None, auto_ack=True)
            expected_exclusive = (
                {
                    "name": exclusive,
                    "vhost": "/",
                    "type": "classic",
                    "durable": False,
                    "auto_delete": True,
                    "exclusive": True,
                    "arguments": {},
                    "consumers": 1,
                    "messages": 0,
                    "messages_ready": 0,
                    "messages_unacknowledged": 0,
                },
                "ABSENT",
            )
            expected_transient = (
                {
                    "name": transient,
                    "vhost": "/",
                    "type": "classic",
                    "durable": False,
                    "auto_delete": False,
                    "exclusive": False,
                    "arguments": {},
                    "consumers": 0,
                    "messages": 0,
                    "messages_ready": 0,
                    "messages_unacknowledged": 0,
                },
                "ABSENT",
            )
            assert (
                await_management(broker, _queue_path(exclusive), _view, expected_exclusive)
                == expected_exclusive
            )
            assert (
                await_management(broker, _queue_path(transient), _view, expected_transient)
                == expected_transient
            )
        finally:
            channel.queue_delete(transient)


def test_argument_values_as_json(broker: BrokerHandle) -> None:
    """How field-table values of each type come out in `arguments` (rabbit_misc:amqp_value):
    void is the string "undefined", a timestamp its seconds, a decimal {scale 2, value 125}
    the float 2.125 (sic), byte arrays and long strings text."""
    name = unique("mgmt-args")
    arguments = {
        "x-int": 7,
        "x-big": 2**40,
        "x-negative": -3,
        "x-text": "héllo",
        "x-bytes": b"raw",
        "x-bool": True,
        "x-void": None,
        "x-table": {"a": 1, "b": "c", "nested": {"d": [1, "e"]}},
        "x-array": ["a", 1, False],
        "x-decimal": decimal.Decimal("1.25"),
        "x-timestamp": datetime.datetime(2020, 1, 2, 3, 4, 5),
    }
    with connection(broker) as conn:
        conn.channel().queue_declare(name, arguments=arguments)
    try:
        expected = {
            "x-int": 7,
            "x-big": 1099511627776,
            "x-negative": -3,
            "x-text": "héllo",
            "x-bytes": "raw",
            "x-bool": True,
            "x-void": "undefined",
            "x-table": {"a": 1, "b": "c", "nested": {"d": [1, "e"]}},
            "x-array": ["a", 1, False],
            "x-decimal": 2.125,
            "x-timestamp": 1577934245,
        }

        def view(document: dict[str, Any]) -> Any:
            return document.get("arguments")

        assert await_management(broker, _queue_path(name), view, expected) == expected
    finally:
        delete_queue(broker, name)


def test_overview(broker: BrokerHandle) -> None:
    """The overview's versions and totals (other tests' queues may add to the totals)."""
    name = unique("mgmt-ov")
    with connection(broker) as conn:
        channel = conn.channel()
        channel.queue_declare(name)
        try:
            channel.confirm_delivery()
            for body in (b"a", b"b", b"c"):
                channel.basic_publish("", name, body)
            channel.basic_consume(name, lambda *_: None)  # holds the three unacked

            def view(document: dict[str, Any]) -> Any:
                totals = document.get("queue_totals", {})
                objects = document.get("object_totals", {})
                return (
                    document.get("management_version"),
                    document.get("rabbitmq_version"),
                    document.get("product_version"),
                    totals.get("messages", 0) >= 3,
                    totals.get("messages_unacknowledged", 0) >= 3,
                    isinstance(totals.get("messages_ready"), int),
                    objects.get("queues", 0) >= 1,
                    objects.get("consumers", 0) >= 1,
                    objects.get("connections", 0) >= 1,
                    objects.get("channels", 0) >= 1,
                    objects.get("exchanges", 0) >= 7,
                    any(
                        listener.get("protocol") == "amqp" and listener.get("port") == broker.port
                        for listener in document.get("listeners", [])
                    ),
                )

            expected = ("3.10.8", "3.10.8", "3.10.8", *([True] * 9))
            assert await_management(broker, "/api/overview", view, expected) == expected
        finally:
            channel.queue_delete(name)


@pytest.mark.parametrize(
    ("auth", "json_body"),
    [(("guest", "wrong"), True), (("nobody", "guest"), True), (None, False)],
    ids=["bad-password", "unknown-user", "no-credentials"],
)
@pytest.mark.parametrize("path", ["/api/overview", "/api/queues", "/api/queues/%2F/nope"])
def test_unauthorised(
    broker: BrokerHandle, path: str, auth: tuple[str, str] | None, json_body: bool
) -> None:
    """401 with a challenge; a JSON error for wrong credentials, an empty body for none."""
    reply = management_get(broker, path, auth=auth)
    assert (reply.status, reply.headers.get("www-authenticate")) == (401, AUTH_REALM)
    if json_body:
        assert (reply.headers.get("content-type"), reply.json()) == (
            "application/json",
            {"error": "not_authorized", "reason": "Login failed"},
        )
    else:
        assert (reply.headers.get("content-type"), reply.body) == (None, b"")


@pytest.mark.parametrize(
    "path",
    ["/api/queues/%2F/tq-no-such-queue", "/api/queues/nope/tq-no-such-queue", "/api/nothing"],
    ids=["missing-queue", "missing-vhost", "unknown-path"],
)
def test_not_found(broker: BrokerHandle, path: str) -> None:
    reply = management_get(broker, path)
    assert (reply.status, reply.headers.get("content-type"), reply.json()) == (
        404,
        "application/json",
        NOT_FOUND,
    )


def test_deleted_queue_is_gone(broker: BrokerHandle) -> None:
    name = unique("mgmt-del")
    with connection(broker) as conn:
        conn.channel().queue_declare(name)
    assert await_management(broker, _queue_path(name), lambda d: d["name"], name) == name
    delete_queue(broker, name)
    assert management_get(broker, _queue_path(name)).status == 404
    assert await_management(broker, "/api/queues", _in_list(name), ("matches", 0)) == (
        "matches",
        0,
    )
