"""A terminal for end-to-end tests: one tmux server of our own, its pane's output streamed
through a FIFO so that waiting for the screen wakes on output instead of polling on a timer."""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


class TmuxPane:
    def __init__(self, command: str, width: int = 120, height: int = 40) -> None:
        self.socket = f"tq-e2e-{secrets.token_hex(4)}"
        self._dir = Path(tempfile.mkdtemp(prefix="tq-tmux-"))
        self._fifo = self._dir / "output"
        os.mkfifo(self._fifo)
        # A detached session takes the server's default size; ours, not the user's tmux.conf.
        self._config = self._dir / "tmux.conf"
        self._config.write_text(f"set -g default-size {width}x{height}\n")
        # The shell prints the exit status after the app, then waits to be read.
        script = f"{command}; echo EXIT=$?; sleep 600"
        self._tmux("new-session", "-d", "-s", "lab", "-x", str(width), "-y", str(height), script)
        self._reader = os.open(self._fifo, os.O_RDONLY | os.O_NONBLOCK)
        self._tmux("pipe-pane", "-o", "-t", "lab", f"cat > {shlex.quote(str(self._fifo))}")

    def _tmux(self, *args: str) -> str:
        # COLUMNS/LINES (set under pytest) would override the pane's real size in the app.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True, env=env
        )
        return result.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "lab")

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "lab", "-l", text)

    def press(self, *keys: str) -> None:
        for key in keys:
            self._tmux("send-keys", "-t", "lab", key)

    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout: float = 20) -> str:
        """The screen once predicate(screen) holds; wakes whenever the pane writes output."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if predicate(screen):
                return screen
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{screen}")
            ready, _, _ = select.select([self._reader], [], [], remaining)
            if ready:
                try:
                    if not os.read(self._reader, 65536):
                        # The pane's writer is gone: nothing on screen will change any more.
                        deadline = time.monotonic()
                except BlockingIOError:
                    pass

    def close(self) -> None:
        socket_path = ""
        with contextlib.suppress(subprocess.CalledProcessError):
            socket_path = self._tmux("display-message", "-p", "#{socket_path}").strip()
            self._tmux("kill-server")
        if socket_path:
            Path(socket_path).unlink(missing_ok=True)
        os.close(self._reader)
        self._fifo.unlink(missing_ok=True)
        self._config.unlink(missing_ok=True)
        self._dir.rmdir()
