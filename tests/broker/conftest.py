"""Tests of the embedded broker alone: fuzzing, flow control, the store, the command line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tui_queue.broker import BrokerConfig, BrokerThread

FUZZ_COUNTS: dict[str, int] = {}


@pytest.fixture(scope="module")
def embedded() -> Iterator[BrokerThread]:
    broker = BrokerThread(BrokerConfig(port=0)).start()
    yield broker
    broker.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FUZZ_COUNTS:
        total = sum(FUZZ_COUNTS.values())
        parts = ", ".join(f"{name}: {count}" for name, count in sorted(FUZZ_COUNTS.items()))
        terminalreporter.write_line(f"broker fuzzing: {total} inputs tried ({parts})")
