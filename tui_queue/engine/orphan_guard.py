"""Run `tui-queue ARGS...` in this process, and end it when stdin reaches end of file.

BrokerProcess starts the embedded broker as `python -m tui_queue.engine.orphan_guard broker ...`
with stdin a pipe whose only writer is the parent. However the parent ends (exit, crash, SIGKILL)
the kernel closes that pipe, this guard reads EOF and the broker goes with it: no stray process.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading

# After EOF: SIGTERM first (a clean shutdown), then this long for it before a hard exit.
GRACE_SECONDS = 5.0


def _watch_stdin() -> None:
    # os.read on the descriptor, not sys.stdin: a daemon thread blocked in a buffered read makes
    # the interpreter abort at exit ("could not acquire lock for <stdin>") when the broker ends.
    fd = sys.stdin.fileno()
    while os.read(fd, 4096):
        pass  # the parent never writes; anything read is ignored
    timer = threading.Timer(GRACE_SECONDS, os._exit, args=(1,))
    timer.daemon = True
    timer.start()
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str]) -> None:
    threading.Thread(target=_watch_stdin, name="tq-orphan-guard", daemon=True).start()
    sys.argv = ["tui-queue", *argv]
    runpy.run_module("tui_queue", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
