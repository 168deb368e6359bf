"""The tutorial's task rules (a body's dots are its seconds of work) and our message ids."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

HELLO = "Hello World!"
# The five tasks typed in the tutorial's round-robin section.
TUTORIAL_TASKS: tuple[str, ...] = (
    "First message.",
    "Second message..",
    "Third message...",
    "Fourth message....",
    "Fifth message.....",
)


def task_body(words: Sequence[str]) -> str:
    """new_task.py's rule: the words joined by spaces, or "Hello World!" when there are none."""
    return " ".join(words) or HELLO


def dots(body: bytes | str) -> int:
    if isinstance(body, str):
        return body.count(".")
    return body.count(b".")


def work_seconds(body: bytes | str, seconds_per_dot: float) -> float:
    """worker.py sleeps one second per dot; the lab scales that by seconds_per_dot."""
    return dots(body) * seconds_per_dot


def heavy_light_bodies(
    count: int, heavy_dots: int = 5, light_dots: int = 1, first: int = 1
) -> list[str]:
    """The tutorial's fair-dispatch case: odd messages heavy, even ones light."""
    bodies = []
    for number in range(first, first + count):
        if number % 2 == 1:
            bodies.append(f"Heavy task {number}" + "." * heavy_dots)
        else:
            bodies.append(f"Light task {number}" + "." * light_dots)
    return bodies


def preview(body: bytes, limit: int = 256) -> str:
    """Text for events and lists: decoded leniently and cut, since bodies may be 128 MiB."""
    text = body[: limit * 4].decode("utf-8", errors="replace")
    if len(text) > limit:
        return text[: limit - 1] + "…"
    return text


@dataclass(frozen=True, slots=True)
class MessageIds:
    """Message ids of one engine run: "<run>.<seq>", so leftovers of other runs read as external."""

    run: str

    @classmethod
    def fresh(cls) -> MessageIds:
        return cls(f"tq-{secrets.token_hex(4)}")

    def make(self, seq: int) -> str:
        return f"{self.run}.{seq}"

    def parse(self, message_id: str | None) -> int | None:
        """The sequence number of one of our messages, or None for anything else."""
        if not message_id:
            return None
        run, _, seq = message_id.rpartition(".")
        if run != self.run or not seq.isdigit() or not seq.isascii():
            return None
        return int(seq)
