"""Process checks shared by the test harness."""

from __future__ import annotations

import psutil


def running(process: psutil.Process) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for init, which may be slow to reap)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
