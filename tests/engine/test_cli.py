"""`tui-queue new-task`, `worker` and `run` as a person runs them, on both brokers."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading

import pytest

from .conftest import BrokerUnderTest


def tui_queue(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui_queue", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Lines:
    """A child's stdout, line by line, waited on with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next(self, timeout: float = 15) -> str | None:
        return self._lines.get(timeout=timeout)

    def join(self) -> None:
        """Returns once the child's stdout has ended (the child has exited)."""
        self._thread.join(15)
        assert not self._thread.is_alive(), "the child's stdout did not end"


def test_new_task_and_worker_print_the_tutorials_lines(
    engine_broker: BrokerUnderTest, queue_name: str
) -> None:
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui_queue",
            "worker",
            "--url",
            engine_broker.url,
            "--queue",
            queue_name,
            "--seconds-per-dot",
            "0.01",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = Lines(worker)
    try:
        assert lines.next() == " [*] Waiting for messages. To exit press CTRL+C"
        sent = []
        for words in (["First", "message."], ["Second", "message.."]):
            result = tui_queue(
                "new-task", *words, "--url", engine_broker.url, "--queue", queue_name
            )
            assert result.returncode == 0, result.stderr
            sent.append(result.stdout)
        assert sent == [" [x] Sent 'First message.'\n", " [x] Sent 'Second message..'\n"]
        assert [lines.next() for _ in range(4)] == [
            " [x] Received 'First message.'",
            " [x] Done",
            " [x] Received 'Second message..'",
            " [x] Done",
        ]
        hello = tui_queue("new-task", "--url", engine_broker.url, "--queue", queue_name)
        assert hello.stdout == " [x] Sent 'Hello World!'\n"
        assert lines.next() == " [x] Received 'Hello World!'"
    finally:
        worker.send_signal(signal.SIGINT)
        # The reader owns stdout until its end of file; communicate() after it, or it would
        # close the pipe under the reader.
        lines.join()
        _out, err = worker.communicate(timeout=15)
    assert worker.returncode == 0
    assert "Traceback" not in err


def test_run_round_robin_json(engine_broker: BrokerUnderTest) -> None:
    result = tui_queue(
        "run",
        "round-robin",
        "--url",
        engine_broker.url,
        "--management-url",
        engine_broker.management_url or "",
        "--seconds-per-dot",
        "0.02",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    deliveries = {row["worker"]: row["first_deliveries"] for row in report["workers"]}
    assert deliveries == {"w1": [1, 3, 5], "w2": [2, 4]}


def test_run_table_names_the_checks(engine_broker: BrokerUnderTest) -> None:
    result = tui_queue("run", "kill", "--url", engine_broker.url, "--seconds-per-dot", "0.02")
    assert result.returncode == 0, result.stderr
    assert "✓ nothing lost" in result.stdout
    assert "published 6  done 6  lost 0" in result.stdout


def test_run_without_url_starts_its_own_broker() -> None:
    result = tui_queue("run", "auto-ack-kill", "--seconds-per-dot", "0.02", "--json")
    if "did not start" in result.stderr:
        pytest.skip(f"the embedded broker cannot start here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["lost"] == report["facts"]["held_at_kill"] == 3


def test_unreachable_broker_is_one_line_and_exit_1() -> None:
    url = "amqp://guest:guest@127.0.0.1:1/"
    for args in (
        ("new-task", "hi", "--url", url),
        ("worker", "--url", url),
        ("run", "round-robin", "--url", url),
    ):
        result = tui_queue(*args)
        assert result.returncode == 1, args
        assert result.stderr.count("\n") == 1, result.stderr
        assert "connection refused" in result.stderr
        assert "Traceback" not in result.stderr


def test_bad_credentials_are_one_line_and_exit_1(engine_broker: BrokerUnderTest) -> None:
    url = engine_broker.url.replace("guest:guest", "guest:wrong")
    for args in (("new-task", "hi", "--url", url), ("worker", "--url", url)):
        result = tui_queue(*args)
        assert result.returncode == 1
        assert result.stderr.strip().endswith(
            "refused the login of user 'guest' "
            "(wrong password, or guest connecting from a non-local address)"
        )
        assert result.stderr.count("\n") == 1


def test_durability_needs_a_broker_it_can_restart(engine_broker: BrokerUnderTest) -> None:
    result = tui_queue("run", "durability", "--url", engine_broker.url)
    assert result.returncode == 1
    assert "durability restarts the broker" in result.stderr
    assert result.stderr.count("\n") == 1


def test_queue_type_mismatch_is_explained(engine_broker: BrokerUnderTest, queue_name: str) -> None:
    first = tui_queue(
        "new-task",
        "q.",
        "--url",
        engine_broker.url,
        "--queue",
        queue_name,
        "--queue-type",
        "quorum",
    )
    assert first.returncode == 0, first.stderr
    second = tui_queue("new-task", "c.", "--url", engine_broker.url, "--queue", queue_name)
    assert second.returncode == 1
    assert "PRECONDITION_FAILED - inequivalent arg 'x-queue-type'" in second.stderr


def test_nonsense_settings_are_one_line_and_exit_1() -> None:
    """Refused before any broker is reached (the URL here answers nothing)."""
    url = "amqp://guest:guest@127.0.0.1:1/"
    for args, message in (
        (("run", "round-robin", "--workers", "0", "--url", url), "workers must be between"),
        (("run", "kill", "--prefetch", "-1", "--url", url), "prefetch must be between"),
        (("run", "kill", "--seconds-per-dot", "-2"), "seconds per dot must be between"),
        (("worker", "--prefetch", "70000", "--url", url), "prefetch must be between"),
        (("new-task", "hi", "--queue", "", "--url", url), "queue name must be"),
    ):
        result = tui_queue(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
