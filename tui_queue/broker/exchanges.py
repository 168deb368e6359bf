"""Exchanges and their routing: direct, fanout, topic and headers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tui_queue.broker.codec import Table

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
            words = routing_key.split(".")
            for binding in self.bindings:
                if topic_matches(binding.routing_key.split("."), words):
                    yield binding
        elif self.kind == "headers":
            for binding, arguments in self.bindings.items():
                if headers_match(arguments, headers or {}):
                    yield binding


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


def headers_match(arguments: Table, headers: Table) -> bool:
    match_kind = arguments.get("x-match")
    want_all = match_kind is None or match_kind.value in (b"all", "all")
    wanted = [(k, v) for k, v in arguments.items() if not k.startswith("x-")]
    if not wanted:
        return want_all
    hits = 0
    for key, value in wanted:
        present = headers.get(key)
        if present is not None and (value.type == "void" or present.value == value.value):
            hits += 1
        elif want_all:
            return False
    return hits == len(wanted) if want_all else hits > 0
