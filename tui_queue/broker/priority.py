"""Priority queues (x-max-priority, classic only), as rabbit_priority_queue keeps them.

One FIFO per priority level; the highest non-empty level is served first. A message's priority
property above the maximum counts as the maximum, and no priority counts as 0. Drops for a
length limit and for expiry take the head, which is the highest priority's oldest message.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from tui_queue.broker.message import Entry
from tui_queue.broker.queues import Queue


class PriorityReady:
    """The ready messages of a priority queue, with the part of deque's interface queues use."""

    __slots__ = ("levels", "top", "count")

    def __init__(self, max_priority: int) -> None:
        self.top = max_priority
        self.levels: list[deque[Entry]] = [deque() for _ in range(max_priority + 1)]
        self.count = 0

    def level_of(self, entry: Entry) -> deque[Entry]:
        return self.levels[min(entry.message.priority, self.top)]

    def append(self, entry: Entry) -> None:
        self.level_of(entry).append(entry)
        self.count += 1

    def popleft(self) -> Entry:
        for level in reversed(self.levels):
            if level:
                self.count -= 1
                return level.popleft()
        raise IndexError("pop from an empty priority queue")

    def __getitem__(self, index: int) -> Entry:
        """Only the head (index 0): the message delivered next."""
        if index != 0:
            raise IndexError("only the head of a priority queue can be read")
        for level in reversed(self.levels):
            if level:
                return level[0]
        raise IndexError("empty priority queue")

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def __iter__(self) -> Iterator[Entry]:
        for level in reversed(self.levels):
            yield from level

    def clear(self) -> None:
        for level in self.levels:
            level.clear()
        self.count = 0

    def remove_newest(self, entry: Entry) -> bool:
        level = self.level_of(entry)
        if level and level[-1] is entry:
            level.pop()
            self.count -= 1
            return True
        return False


class PriorityQueue(Queue):
    """A classic queue declared with x-max-priority."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert self.options is not None and self.options.max_priority is not None
        self.ready = PriorityReady(self.options.max_priority)  # type: ignore[assignment]

    def _retract(self, entry: Entry) -> bool:
        return self.ready.remove_newest(entry)  # type: ignore[attr-defined, no-any-return]

    def _merge_returned(self, returned: list[Entry]) -> None:
        # Each returned message goes back to its original place within its own level.
        ready: PriorityReady = self.ready  # type: ignore[assignment]
        by_level: dict[int, list[Entry]] = {}
        for entry in returned:
            by_level.setdefault(id(ready.level_of(entry)), []).append(entry)
        for entries in by_level.values():
            level = ready.level_of(entries[0])
            merged = sorted([*level, *entries], key=lambda e: e.seq)
            level.clear()
            level.extend(merged)
            ready.count += len(entries)
