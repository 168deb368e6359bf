"""The embedded broker as a child process: start, restart on the same port, and no strays."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from tui_queue.engine.broker_process import BrokerProcess, BrokerStartError
from tui_queue.engine.connect import connect

from .conftest import _embedded_available

pytestmark = pytest.mark.skipif(
    _embedded_available() is not None, reason="the embedded broker does not exist yet"
)


def answers(url: str) -> bool:
    conn = connect(url)
    conn.close()
    return True


def gone(pid: int, timeout: float = 10.0) -> bool:
    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


def test_start_restart_stop() -> None:
    broker = BrokerProcess()
    broker.start()
    try:
        port, management = broker.port, broker.management_url
        assert port != 0 and answers(broker.url)
        first = broker.pid
        assert first is not None
        broker.restart(kill=True)
        assert broker.pid != first and gone(first)
        assert (broker.port, broker.management_url) == (port, management)
        assert answers(broker.url)
        second = broker.pid
        broker.restart(kill=False)
        assert gone(second) and answers(broker.url)
        last = broker.pid
    finally:
        broker.stop()
    assert last is not None and gone(last)
    assert not broker.data_dir.exists()


def test_a_port_in_use_is_a_clear_error() -> None:
    with BrokerProcess() as first:
        second = BrokerProcess(port=first.port, start_timeout=10)
        with pytest.raises(BrokerStartError, match="did not start"):
            second.start()
        second.stop()


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_the_broker_dies_with_its_parent(how: str, tmp_path: Path) -> None:
    """However the parent goes, the orphan guard sees its stdin close and takes the broker down."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from tui_queue.engine.broker_process import BrokerProcess
        broker = BrokerProcess(data_dir={str(tmp_path)!r})  # the dying parent cannot remove it
        broker.start()
        print(broker.pid, flush=True)
        sys.stdin.readline()
        if {how!r} == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(0)  # no atexit: only the pipe can save us
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None and parent.stdin is not None
    child = int(parent.stdout.readline())
    assert psutil.pid_exists(child)
    parent.stdin.write("go\n")
    parent.stdin.flush()
    parent.wait(10)
    assert gone(child), f"broker {child} outlived its parent"
    assert os.getpgid(os.getpid()) != child  # it ran in a session of its own
