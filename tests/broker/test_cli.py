"""`tui-queue broker` in the foreground: the URL line, and SIGINT/SIGTERM as RabbitMQ stops."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pika
import pika.exceptions
import pytest

URL = re.compile(r"amqp://127\.0\.0\.1:(\d+)")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_broker_prints_its_url_and_stops_clients_with_320(signum: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tui_queue", "broker", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = URL.search(line)
        assert match, line
        port = int(match.group(1))
        assert port != 0
        connection = pika.BlockingConnection(
            pika.URLParameters(f"amqp://guest:guest@127.0.0.1:{port}/%2F")
        )
        connection.channel().queue_declare("", exclusive=True)
        process.send_signal(signum)
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
            while True:
                connection.process_data_events(time_limit=1)
        assert closed.value.reply_code == 320
        assert closed.value.reply_text == (
            "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"
        )
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_port_in_use_is_a_one_line_error() -> None:
    holder = subprocess.Popen(
        [sys.executable, "-m", "tui_queue", "broker", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        port = URL.search(holder.stdout.readline()).group(1)  # type: ignore[union-attr]
        result = subprocess.run(
            [sys.executable, "-m", "tui_queue", "broker", "--port", port],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 1
        assert result.stderr.startswith(f"tui-queue broker: cannot listen on 127.0.0.1:{port}")
        assert "Traceback" not in result.stderr
    finally:
        holder.terminate()
        holder.wait(10)
