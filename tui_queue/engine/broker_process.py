"""The embedded broker as a child process the engine can restart: start, restart, stop.

The child is `python -m tui_queue.engine.orphan_guard broker --port P --management-port M
--data-dir D`, i.e. `tui-queue broker ...` behind a guard that ends it when our end of its stdin
pipe closes. It runs in its own session (a Ctrl+C meant for the app does not reach it; stop() kills
its whole process group), and stop() also runs at interpreter exit. Its own interpreter means it
never competes with the app for the GIL, and "kill the broker" is a real SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path

_AMQP_LINE = re.compile(r"amqp://(?:[^@\s/]*@)?([^\s:/]+):(\d+)")
_HTTP_LINE = re.compile(r"http://([^\s:/]+):(\d+)")


class BrokerStartError(Exception):
    """The embedded broker did not come up; str() is one line, with the child's last output."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class BrokerProcess:
    """Implements BrokerControl for the embedded broker."""

    def __init__(
        self,
        port: int = 0,
        management_port: int | None = 0,
        data_dir: str | Path | None = None,
        host: str = "127.0.0.1",
        user: str = "guest",
        password: str = "guest",
        extra_args: tuple[str, ...] = (),
        start_timeout: float = 20.0,
        durable_store: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        # Chosen here, not by the child, so a restart comes back on the very same port.
        self.management_port = free_port(host) if management_port == 0 else management_port
        self._own_data_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="tq-broker-"))
        self._user = user
        self._password = password
        self._extra = extra_args
        self._start_timeout = start_timeout
        self._durable_store = durable_store
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        # Set once the child prints its URL (then _listening is True) or ends its output.
        self._ready = threading.Event()
        self._listening = False
        self._output: deque[str] = deque(maxlen=50)
        self._lock = threading.Lock()
        self._atexit_registered = False

    # --- BrokerControl ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"amqp://{self._user}:{self._password}@{self.host}:{self.port}/%2F"

    @property
    def management_url(self) -> str | None:
        if self.management_port is None:
            return None
        return f"http://{self.host}:{self.management_port}"

    @property
    def is_embedded(self) -> bool:
        return True

    @property
    def durable_store(self) -> bool:
        return self._durable_store

    def restart(self, kill: bool) -> None:
        with self._lock:
            self._terminate(hard=kill)
            self._spawn()

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        with self._lock:
            if not self._atexit_registered:
                atexit.register(self.stop)
                self._atexit_registered = True
            self._spawn()

    def stop(self) -> None:
        with self._lock:
            self._terminate(hard=False)
            if self._own_data_dir:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    def output(self) -> list[str]:
        """The child's last lines of output (for error messages)."""
        return list(self._output)

    def __enter__(self) -> BrokerProcess:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "tui_queue.engine.orphan_guard",
            "broker",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        if self.management_port is not None:
            command += ["--management-port", str(self.management_port)]
        return command + list(self._extra)

    def _spawn(self) -> None:
        self._ready.clear()
        self._listening = False
        self._output.clear()
        self._process = subprocess.Popen(
            self._command(),
            stdin=subprocess.PIPE,  # our end closing (however we die) ends the child
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = threading.Thread(
            target=self._read_output, args=(self._process,), name="tq-broker-output", daemon=True
        )
        self._reader.start()
        # Output ended without the URL: the child failed, though it may not have exited yet.
        if not self._ready.wait(self._start_timeout) or not self._listening or not self.running:
            tail = " | ".join(self._output) or "no output"
            self._terminate(hard=True)
            raise BrokerStartError(f"the embedded broker did not start: {tail}")

    def _read_output(self, process: subprocess.Popen[bytes]) -> None:
        """Reader thread: find the URL line, then keep draining so the child never blocks on a
        full pipe. Ends at EOF, i.e. when the child exits."""
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self._output.append(line)
            if self._ready.is_set():
                continue
            amqp = _AMQP_LINE.search(line)
            if amqp:
                self.port = int(amqp.group(2))
                self._listening = True
                self._ready.set()
            http = _HTTP_LINE.search(line)
            if http and self.management_port is None:
                self.management_port = int(http.group(2))
        self._ready.set()  # EOF: wake start() so it sees the child has gone

    def _terminate(self, hard: bool) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL if hard else signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process.stdin is not None:
            process.stdin.close()
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None
        if process.stdout is not None:
            process.stdout.close()
