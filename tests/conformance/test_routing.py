"""Routing edge cases: topic patterns, headers matching, fanout, e2e loops, alternate exchanges."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from tests.conformance.helpers import (
    BrokerHandle,
    bodies,
    connection,
    delete_exchange,
    delete_queue,
    get_all,
    unique,
)


@contextmanager
def _exchanges(broker: BrokerHandle, *kinds: str, **arguments: Any) -> Iterator[list[str]]:
    """Exchanges of the given types with unique names, deleted afterwards."""
    names = [unique(f"x{kind[0]}") for kind in kinds]
    with connection(broker) as conn:
        channel = conn.channel()
        for name, kind in zip(names, kinds, strict=True):
            channel.exchange_declare(name, kind, arguments=arguments.get(name))
    try:
        yield names
    finally:
        for name in names:
            delete_exchange(broker, name)


@contextmanager
def _queues(broker: BrokerHandle, count: int) -> Iterator[list[str]]:
    names = [unique("rq") for _ in range(count)]
    with connection(broker) as conn:
        channel = conn.channel()
        for name in names:
            channel.queue_declare(name)
    try:
        yield names
    finally:
        for name in names:
            delete_queue(broker, name)


def _confirmed_channel(conn: pika.BlockingConnection) -> BlockingChannel:
    channel = conn.channel()
    channel.confirm_delivery()
    return channel


def _contents(channel: BlockingChannel, queues: list[str]) -> list[list[str]]:
    return [bodies(get_all(channel, queue)) for queue in queues]


# -- topic -------------------------------------------------------------------------------------

TOPIC_BINDINGS = ["#", "a.#.b", "*.*", "*", "", "a.#", "#.b", "a..b", "a.*.#", "#.#", "a.*"]
TOPIC_KEYS = ["", "a", "b", "a.b", "a.x.b", "a.x.y.b", "a.b.c", "a..b", ".", "a.", ".b", "x.y"]


def test_topic_edge_cases(broker: BrokerHandle) -> None:
    """`#` alone, `#` matching zero words, `a.#.b`, `*.*`, empty words, and the empty key.

    An empty routing key has no words at all (not one empty word): `*` does not match it, while
    `#` and the empty binding key do; `a.` and `.b` have an empty word that `*` matches.
    """
    with (
        _exchanges(broker, "topic") as (exchange,),
        _queues(broker, len(TOPIC_BINDINGS)) as queues,
        connection(broker) as conn,
    ):
        channel = _confirmed_channel(conn)
        for queue, pattern in zip(queues, TOPIC_BINDINGS, strict=True):
            channel.queue_bind(queue, exchange, routing_key=pattern)
        for key in TOPIC_KEYS:
            channel.basic_publish(exchange, key, f"[{key}]".encode())
        got = dict(zip(TOPIC_BINDINGS, _contents(channel, queues), strict=True))
        assert got == {
            "#": [f"[{key}]" for key in TOPIC_KEYS],
            "a.#.b": ["[a.b]", "[a.x.b]", "[a.x.y.b]", "[a..b]"],
            "*.*": ["[a.b]", "[.]", "[a.]", "[.b]", "[x.y]"],
            "*": ["[a]", "[b]"],
            "": ["[]"],
            "a.#": ["[a]", "[a.b]", "[a.x.b]", "[a.x.y.b]", "[a.b.c]", "[a..b]", "[a.]"],
            "#.b": ["[b]", "[a.b]", "[a.x.b]", "[a.x.y.b]", "[a..b]", "[.b]"],
            "a..b": ["[a..b]"],
            "a.*.#": ["[a.b]", "[a.x.b]", "[a.x.y.b]", "[a.b.c]", "[a..b]", "[a.]"],
            "#.#": [f"[{key}]" for key in TOPIC_KEYS],
            "a.*": ["[a.b]", "[a.]"],
        }


def test_topic_overlapping_bindings_deliver_once(broker: BrokerHandle) -> None:
    """A queue bound with several patterns that all match gets one copy."""
    with (
        _exchanges(broker, "topic") as (exchange,),
        _queues(broker, 1) as (queue,),
        connection(broker) as conn,
    ):
        channel = _confirmed_channel(conn)
        for pattern in ("#", "a.*", "*.b", "a.b", "a.#.b"):
            channel.queue_bind(queue, exchange, routing_key=pattern)
        channel.basic_publish(exchange, "a.b", b"one")
        channel.basic_publish(exchange, "a.c", b"two")
        assert bodies(get_all(channel, queue)) == ["one", "two"]


# -- headers -----------------------------------------------------------------------------------

HEADER_BINDINGS: dict[str, dict[str, Any]] = {
    "all": {"x-match": "all", "format": "pdf", "type": "report"},
    "any": {"x-match": "any", "format": "pdf", "type": "report"},
    "default-is-all": {"format": "pdf", "type": "report"},
    "void-all": {"x-match": "all", "format": None},
    "void-any": {"x-match": "any", "missing": None, "type": "log"},
    "no-keys-all": {"x-match": "all"},
    "no-keys-any": {"x-match": "any"},
    "x-keys-ignored": {"x-match": "all", "x-foo": "bar"},
    "all-with-x": {"x-match": "all-with-x", "x-foo": "bar"},
    "any-with-x": {"x-match": "any-with-x", "x-foo": "bar", "format": "zip"},
    "int-one": {"n": 1},
    "bool-true": {"flag": True},
}
HEADER_MESSAGES: dict[str, dict[str, Any] | None] = {
    "pdf-report": {"format": "pdf", "type": "report"},
    "pdf": {"format": "pdf"},
    "report": {"type": "report"},
    "none": None,
    "empty": {},
    "zip-xfoo": {"format": "zip", "x-foo": "bar"},
    "xfoo": {"x-foo": "bar"},
    "n-int": {"n": 1},
    "n-bool": {"n": True, "flag": 1},
    "format-void": {"format": None},
    "log": {"type": "log", "extra": "yes"},
    "flag": {"flag": True},
}


def test_headers_exchange_matching(broker: BrokerHandle) -> None:
    """x-match all/any (default all), void binding values (presence), x- keys skipped unless
    all-with-x/any-with-x, empty specs, and strict value comparison (1 is not true)."""
    with (
        _exchanges(broker, "headers") as (exchange,),
        _queues(broker, len(HEADER_BINDINGS)) as queues,
        connection(broker) as conn,
    ):
        channel = _confirmed_channel(conn)
        for queue, spec in zip(queues, HEADER_BINDINGS.values(), strict=True):
            channel.queue_bind(queue, exchange, arguments=spec)
        for label, headers in HEADER_MESSAGES.items():
            properties = pika.BasicProperties(headers=headers)
            channel.basic_publish(exchange, "ignored", label.encode(), properties)
        got = dict(zip(HEADER_BINDINGS, _contents(channel, queues), strict=True))
        everything = list(HEADER_MESSAGES)
        assert got == {
            "all": ["pdf-report"],
            "any": ["pdf-report", "pdf", "report"],
            "default-is-all": ["pdf-report"],
            "void-all": ["pdf-report", "pdf", "zip-xfoo", "format-void"],
            "void-any": ["log"],
            "no-keys-all": everything,
            "no-keys-any": [],
            "x-keys-ignored": everything,
            "all-with-x": ["zip-xfoo", "xfoo"],
            "any-with-x": ["zip-xfoo", "xfoo"],
            "int-one": ["n-int"],
            "bool-true": ["flag"],
        }


@pytest.mark.parametrize(
    ("x_match", "text"),
    [
        (
            "bogus",
            'PRECONDITION_FAILED - Invalid x-match field value <<"bogus">>; expected all, any, '
            "all-with-x, or any-with-x",
        ),
        (
            1,
            "PRECONDITION_FAILED - Invalid x-match field type signedint (value 1); expected "
            "longstr",
        ),
    ],
    ids=["bad-value", "bad-type"],
)
def test_headers_binding_bad_x_match(broker: BrokerHandle, x_match: Any, text: str) -> None:
    with (
        _exchanges(broker, "headers") as (exchange,),
        _queues(broker, 1) as (queue,),
        connection(broker) as conn,
    ):
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
            conn.channel().queue_bind(queue, exchange, arguments={"x-match": x_match})
        assert (excinfo.value.reply_code, excinfo.value.reply_text) == (406, text)


# -- fanout and exchange-to-exchange -----------------------------------------------------------


def test_fanout_to_several_queues(broker: BrokerHandle) -> None:
    """Every bound queue gets every message once, in order, whatever the keys; a queue bound
    twice (two keys) still gets one copy."""
    with (
        _exchanges(broker, "fanout") as (exchange,),
        _queues(broker, 3) as queues,
        connection(broker) as conn,
    ):
        channel = _confirmed_channel(conn)
        for queue in queues:
            channel.queue_bind(queue, exchange, routing_key="k")
        channel.queue_bind(queues[0], exchange, routing_key="other")
        for i, key in enumerate(["k", "", "anything.at.all"]):
            channel.basic_publish(exchange, key, f"f{i}".encode())
        assert _contents(channel, queues) == [["f0", "f1", "f2"]] * 3


def test_exchange_to_exchange_loops(broker: BrokerHandle) -> None:
    """x1(direct) -k-> x2(fanout) -> x3(topic) -#-> x1, x2 -> x1, x3 bound to itself: a loop
    of bindings delivers each message once to each queue reached, and terminates."""
    with (
        _exchanges(broker, "direct", "fanout", "topic") as (x1, x2, x3),
        _queues(broker, 4) as (q1, q2, q3, q_both),
        connection(broker) as conn,
    ):
        channel = _confirmed_channel(conn)
        channel.exchange_bind(x2, x1, routing_key="k")
        channel.exchange_bind(x3, x2)
        channel.exchange_bind(x1, x3, routing_key="#")
        channel.exchange_bind(x1, x2)
        channel.exchange_bind(x3, x3, routing_key="#")
        channel.queue_bind(q1, x1, routing_key="k")
        channel.queue_bind(q2, x2)
        channel.queue_bind(q3, x3, routing_key="#")
        channel.queue_bind(q_both, x2)
        channel.queue_bind(q_both, x3, routing_key="k")
        channel.basic_publish(x1, "k", b"via-x1")
        channel.basic_publish(x3, "k", b"via-x3")
        channel.basic_publish(x3, "z", b"z-via-x3")
        channel.basic_publish(x1, "z", b"z-via-x1")  # nothing bound to x1 with z
        assert _contents(channel, [q1, q2, q3, q_both]) == [
            ["via-x1", "via-x3"],
            ["via-x1", "via-x3"],
            ["via-x1", "via-x3", "z-via-x3"],
            ["via-x1", "via-x3"],
        ]
        with connection(broker) as conn2:
            returned: list[tuple[str, str, str]] = []
            plain = conn2.channel()
            plain.add_on_return_callback(
                lambda _ch, method, _props, body: returned.append(
                    (method.exchange, method.routing_key, body.decode())
                )
            )
            plain.basic_publish(x1, "z", b"unroutable", mandatory=True)
            plain.queue_declare(q1, passive=True)  # a round trip: the return came before it
            conn2.process_data_events(time_limit=0)
            assert returned == [(x1, "z", "unroutable")]


def test_delivered_message_names_the_published_exchange(broker: BrokerHandle) -> None:
    """A message routed through x1 -> x2 -> queue is delivered with exchange x1 and its key."""
    with (
        _exchanges(broker, "topic", "fanout") as (x1, x2),
        _queues(broker, 1) as (queue,),
        connection(broker) as conn,
    ):
        channel = _confirmed_channel(conn)
        channel.exchange_bind(x2, x1, routing_key="a.*")
        channel.queue_bind(queue, x2)
        channel.basic_publish(x1, "a.b", b"hop")
        method, _props, body = channel.basic_get(queue, auto_ack=True)
        assert (method.exchange, method.routing_key, body) == (x1, "a.b", b"hop")


# -- alternate exchange ------------------------------------------------------------------------


@contextmanager
def _alternate_setup(broker: BrokerHandle) -> Iterator[tuple[str, str, str, str, str]]:
    """main(direct, alternate-exchange=ae) -k-> q_main; ae(fanout) -> q_ae; missing-ae names an
    exchange that does not exist; loop-a and loop-b are each other's alternate."""
    names = {kind: unique(kind) for kind in ("main", "ae", "missing", "loop-a", "loop-b")}
    with ExitStack() as stack:
        conn = stack.enter_context(connection(broker))
        channel = conn.channel()
        channel.exchange_declare(names["ae"], "fanout")
        channel.exchange_declare(
            names["main"], "direct", arguments={"alternate-exchange": names["ae"]}
        )
        channel.exchange_declare(
            names["missing"], "direct", arguments={"alternate-exchange": unique("nope")}
        )
        channel.exchange_declare(
            names["loop-a"], "direct", arguments={"alternate-exchange": names["loop-b"]}
        )
        channel.exchange_declare(
            names["loop-b"], "direct", arguments={"alternate-exchange": names["loop-a"]}
        )
        for name in names.values():
            stack.callback(delete_exchange, broker, name)
        q_main, q_ae = stack.enter_context(_queues(broker, 2))
        channel.queue_bind(q_main, names["main"], routing_key="k")
        channel.queue_bind(q_ae, names["ae"])
        yield names["main"], names["missing"], names["loop-a"], q_main, q_ae


def test_alternate_exchange(broker: BrokerHandle) -> None:
    """Unroutable messages go to the exchange's alternate-exchange (keeping the original exchange
    and key); a mandatory publish that the alternate routes is not returned. A missing alternate
    or an alternate loop with no bindings leaves the message unroutable (returned)."""
    with (
        _alternate_setup(broker) as (main, missing, loop_a, q_main, q_ae),
        connection(broker) as conn,
    ):
        channel = conn.channel()
        returned: list[tuple[str, str, str]] = []
        channel.add_on_return_callback(
            lambda _ch, method, _props, body: returned.append(
                (method.exchange, method.routing_key, body.decode())
            )
        )
        # No confirm mode: pika would raise UnroutableError on the returned publishes.
        channel.basic_publish(main, "k", b"routed")
        channel.basic_publish(main, "other", b"to-ae", mandatory=True)
        channel.basic_publish(missing, "k", b"missing-ae", mandatory=True)
        channel.basic_publish(loop_a, "k", b"loop", mandatory=True)
        # The gets are round trips on the same channel: routing and returns happened before.
        assert bodies(get_all(channel, q_main)) == ["routed"]
        method, _props, body = channel.basic_get(q_ae, auto_ack=True)
        assert (method.exchange, method.routing_key, body) == (main, "other", b"to-ae")
        assert channel.basic_get(q_ae, auto_ack=True)[0] is None
        conn.process_data_events(time_limit=0)
        assert returned == [(missing, "k", "missing-ae"), (loop_a, "k", "loop")]


def test_alternate_exchange_along_an_exchange_chain(broker: BrokerHandle) -> None:
    """Each exchange on the way applies its own alternate: x1 (fanout) -> x2 (direct, no
    binding for the key, alternate ae) sends the message on to ae; the delivery still names
    x1 and the key as published. An alternate-exchange argument must be a string."""
    with (
        _exchanges(broker, "fanout") as (ae,),
        _queues(broker, 1) as (queue,),
        connection(broker) as conn,
    ):
        x1, x2, odd = unique("x1"), unique("x2"), unique("odd")
        channel = _confirmed_channel(conn)
        channel.exchange_declare(x2, "direct", arguments={"alternate-exchange": ae})
        channel.exchange_declare(x1, "fanout")
        try:
            channel.exchange_bind(x2, x1)
            channel.queue_bind(queue, ae)
            channel.basic_publish(x1, "k", b"via-chain")
            method, _props, body = channel.basic_get(queue, auto_ack=True)
            assert (method.exchange, method.routing_key, body) == (x1, "k", b"via-chain")
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo:
                conn.channel().exchange_declare(odd, "direct", arguments={"alternate-exchange": 5})
            assert (excinfo.value.reply_code, excinfo.value.reply_text) == (
                406,
                f"PRECONDITION_FAILED - invalid type 'signedint' for arg 'alternate-exchange' in "
                f"exchange '{odd}' in vhost '/'",
            )
        finally:
            for name in (x1, x2, odd):
                channel.exchange_delete(name)
