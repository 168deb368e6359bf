"""`tui-queue` with no subcommand: run the dashboard, then account for how it ended."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from tui_queue.ui.app import QueueLabApp, create_app
from tui_queue.ui.options import LabOptions

EXIT_STARTUP_FAILED = 2


def run_app(options: LabOptions) -> int:
    """Run until the person quits; a broker that cannot be reached or refuses us gives one line
    on stderr and a non-zero status, never a traceback."""
    app = create_app(options)
    app.defer_broker_stop = True
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        # The signal lands on the main thread, which runs the app's loop: ask it to quit cleanly.
        app.call_later(app.exit)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        app.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
        app.shutdown()  # the broker child; and everything else if the app died
    return _exit_status(app)


def _exit_status(app: QueueLabApp) -> int:
    if app.startup_error is not None:
        print(f"tui-queue: {app.startup_error}", file=sys.stderr)
        return EXIT_STARTUP_FAILED
    return app.return_code or 0
