"""Exchanges and their routing: direct, fanout, topic and headers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tui_queue.broker.codec import Table, Typed, decode_str
from tui_queue.broker.errors import erlang_binary

EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")


@dataclass(frozen=True)
class Binding:
    source: str
    destination: str
    # "queue" or "exchange"
    destination_kind: str
    routing_key: str
    arguments: tuple[tuple[str, str, Any], ...]

    @staticmethod
    def arguments_key(arguments: Table) -> tuple[tuple[str, str, Any], ...]:
        return tuple(sorted((k, v.type, repr(v.value)) for k, v in arguments.items()))


class Exchange:
    def __init__(
        self,
        name: str,
        kind: str,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: Table,
    ) -> None:
        self.name = name
        self.kind = kind
        self.durable = durable
        self.auto_delete = auto_delete
        self.internal = internal
        self.arguments = arguments
        # Where messages this exchange cannot route go instead (rabbit_exchange:route); the
        # declare refuses anything but a string.
        alternate = arguments.get("alternate-exchange")
        self.alternate: str | None = (
            decode_str(alternate.value)
            if alternate is not None and alternate.type == "longstr"
            else None
        )
        # Insertion-ordered so routing results come out in binding order.
        self.bindings: dict[Binding, Table] = {}
        self._by_key: dict[str, list[Binding]] = {}

    def add_binding(self, binding: Binding, arguments: Table) -> bool:
        if binding in self.bindings:
            return False
        self.bindings[binding] = arguments
        self._by_key.setdefault(binding.routing_key, []).append(binding)
        return True

    def remove_binding(self, binding: Binding) -> bool:
        if self.bindings.pop(binding, None) is None:
            return False
        same_key = self._by_key[binding.routing_key]
        same_key.remove(binding)
        if not same_key:
            del self._by_key[binding.routing_key]
        return True

    def matches(self, routing_key: str, headers: Table | None) -> Iterator[Binding]:
        if self.kind == "direct":
            yield from self._by_key.get(routing_key, ())
        elif self.kind == "fanout":
            yield from self.bindings
        elif self.kind == "topic":
            words = topic_words(routing_key)
            for binding in self.bindings:
                if topic_matches(topic_words(binding.routing_key), words):
                    yield binding
        elif self.kind == "headers":
            for binding, arguments in self.bindings.items():
                if headers_match(arguments, headers or {}):
                    yield binding

    def matches_any(self, keys: tuple[str, ...], headers: Table | None) -> Iterator[Binding]:
        """Bindings matching any of several routing keys (the key plus CC and BCC)."""
        if self.kind == "direct":
            seen: set[Binding] = set()
            for key in keys:
                for binding in self._by_key.get(key, ()):
                    if binding not in seen:
                        seen.add(binding)
                        yield binding
        elif self.kind == "topic":
            words = [topic_words(key) for key in keys]
            for binding in self.bindings:
                pattern = topic_words(binding.routing_key)
                if any(topic_matches(pattern, key_words) for key_words in words):
                    yield binding
        else:
            yield from self.matches(keys[0], headers)


def topic_words(key: str) -> list[str]:
    """The words of a topic key: the empty key has none (not one empty word), as in
    rabbit_exchange_type_topic:split_topic_key, so `*` does not match it but `#` does."""
    return key.split(".") if key else []


def topic_matches(pattern: list[str], words: list[str]) -> bool:
    """`*` matches exactly one word, `#` zero or more."""
    # Iterative match with backtracking on the last `#` seen.
    p = w = 0
    star_p = star_w = -1
    while w < len(words):
        if p < len(pattern) and pattern[p] == "#":
            star_p, star_w = p, w
            p += 1
        elif p < len(pattern) and (pattern[p] == "*" or pattern[p] == words[w]):
            p += 1
            w += 1
        elif star_p >= 0:
            star_w += 1
            w = star_w
            p = star_p + 1
        else:
            return False
    while p < len(pattern) and pattern[p] == "#":
        p += 1
    return p == len(pattern)


X_MATCH_KINDS = ("all", "any", "all-with-x", "any-with-x")


def validate_headers_binding(arguments: Table) -> str | None:
    """Why RabbitMQ refuses these headers-binding arguments, or None (validate_binding)."""
    x_match = arguments.get("x-match")
    if x_match is None:
        return None
    if x_match.type != "longstr":
        return (
            f"Invalid x-match field type {x_match.type} (value {_erlang_print(x_match)}); "
            "expected longstr"
        )
    if x_match.value not in (kind.encode() for kind in X_MATCH_KINDS):
        return (
            f"Invalid x-match field value {erlang_binary(x_match.value)}; expected all, any, "
            "all-with-x, or any-with-x"
        )
    return None


def headers_match(arguments: Table, headers: Table) -> bool:
    """rabbit_exchange_type_headers:headers_match: x-match all (the default) or any; keys that
    start with x- take part only with all-with-x / any-with-x; a void value asks for presence."""
    x_match = arguments.get("x-match")
    kind = "all"
    if x_match is not None and x_match.type == "longstr":
        text = x_match.value.decode("utf-8", "replace")
        kind = text if text in X_MATCH_KINDS else "all"
    want_all = kind in ("all", "all-with-x")
    with_x = kind.endswith("-with-x")
    for key, value in arguments.items():
        if key == "x-match" or (key.startswith("x-") and not with_x):
            continue
        present = headers.get(key)
        matched = present is not None and (
            value.type == "void" or _erlang_term(present) == _erlang_term(value)
        )
        if matched and not want_all:
            return True
        if not matched and want_all:
            return False
    return want_all


def _erlang_print(value: Typed) -> str:
    """Roughly how Erlang's ~p prints a decoded scalar field value."""
    raw = value.value
    if value.type == "bool":
        return "true" if raw else "false"
    if value.type == "void":
        return "undefined"
    if isinstance(raw, bytes):
        return erlang_binary(raw)
    return str(raw)


_NUMERIC_TYPES = frozenset(
    {
        "byte",
        "unsignedbyte",
        "short",
        "unsignedshort",
        "signedint",
        "unsignedint",
        "long",
        "timestamp",
        "float",
        "double",
    }
)


def _erlang_term(value: Typed) -> Any:
    """A value shaped so that Python's == agrees with Erlang's == on RabbitMQ's decoded value.

    Numbers (timestamps included) compare by value, 1 == 1.0 too; booleans and void are atoms
    and equal no number; long strings and byte arrays are both binaries; tables and arrays keep
    wire order and each entry's type.
    """
    kind, raw = value.type, value.value
    if kind in _NUMERIC_TYPES:
        return raw
    if kind == "bool":
        return ("atom", "true" if raw else "false")
    if kind == "void":
        return ("atom", "undefined")
    if kind == "decimal":
        scale = max(0, -int(raw.as_tuple().exponent))
        return ("decimal", scale, int(raw.scaleb(scale)))
    if kind == "table":
        return ("table", [(key, v.type, _erlang_term(v)) for key, v in raw.items()])
    if kind == "array":
        return ("array", [(v.type, _erlang_term(v)) for v in raw])
    return ("binary", raw)
