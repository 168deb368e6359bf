"""Start a private RabbitMQ node for tests and benchmarks, without systemd or root-owned dirs.

The node gets its own name, data dir, AMQP/management/distribution ports and Erlang cookie, so it
never collides with another node on the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.support.processes import running

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
CTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")


def rabbitmq_installed() -> bool:
    return SERVER.exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class RabbitMQNode:
    """One private RabbitMQ node; `start()` blocks until AMQP and management answer."""

    consumer_timeout_ms: int | None = None
    channel_tick_ms: int | None = None
    #: How often queues and channels emit management stats (RabbitMQ's default is 5000 ms).
    collect_statistics_interval_ms: int | None = None
    #: Sample interval (s) of the management plugin's aggregation: it collects queue and channel
    #: stats once per the shortest retention-policy interval, 5 s by default.
    management_sample_s: int | None = None
    base_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tq-rabbit-")))
    amqp_port: int = field(default_factory=free_port)
    management_port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    nodename: str = field(default_factory=lambda: f"tq{os.getpid()}x{free_port()}@localhost")
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/%2F"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def _environment(self) -> dict[str, str]:
        home = self.base_dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(f"TQCOOKIE{self.dist_port}")
            cookie.chmod(0o400)
        plugins = self.base_dir / "enabled_plugins"
        plugins.write_text("[rabbitmq_management].\n")
        conf_lines = [
            f"management.tcp.port = {self.management_port}",
            "management.tcp.ip = 127.0.0.1",
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}",
            "loopback_users.guest = true",
        ]
        if self.consumer_timeout_ms is not None:
            conf_lines.append(f"consumer_timeout = {self.consumer_timeout_ms}")
        if self.collect_statistics_interval_ms is not None:
            interval = self.collect_statistics_interval_ms
            conf_lines.append(f"collect_statistics_interval = {interval}")
        if self.management_sample_s is not None:
            sample = self.management_sample_s
            conf_lines += [
                f"management.sample_retention_policies.global.minute = {sample}",
                f"management.sample_retention_policies.basic.minute = {sample}",
                f"management.sample_retention_policies.detailed.10 = {sample}",
            ]
        (self.base_dir / "rabbitmq.conf").write_text("\n".join(conf_lines) + "\n")
        advanced = "[]."
        if self.channel_tick_ms is not None:
            advanced = f"[{{rabbit, [{{channel_tick_interval, {self.channel_tick_ms}}}]}}]."
        (self.base_dir / "advanced.config").write_text(advanced + "\n")
        env = dict(os.environ)
        env.update(
            HOME=str(home),
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.base_dir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base_dir / "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(plugins),
            RABBITMQ_CONFIG_FILE=str(self.base_dir / "rabbitmq"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.base_dir / "advanced.config"),
            RABBITMQ_PID_FILE=str(self.base_dir / "rabbit.pid"),
            RABBITMQ_CONF_ENV_FILE=str(self.base_dir / "rabbitmq-env.conf"),
            RABBITMQ_ALLOW_INPUT="",
        )
        return env

    def start(self, timeout: float = 90.0) -> None:
        env = self._environment()
        log = open(self.base_dir / "server.out", "ab")  # noqa: SIM115 - lives as long as the node
        self.process = subprocess.Popen(
            [str(SERVER)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited early; see {self.base_dir}/server.out")
            if _port_open(self.amqp_port) and self._management_ready():
                return
            time.sleep(0.2)  # waiting on an external process: no event to await
        self.stop()
        raise TimeoutError(f"rabbitmq-server did not start in {timeout}s; see {self.base_dir}")

    def restart(self, kill: bool) -> None:
        """SIGKILL (or stop cleanly) and start again on the same data; return once every
        durable queue the node had is listed again, or after 30 s with a warning that names
        the missing ones and quotes the node's log. (In full runs RabbitMQ has answered 404
        for a durable queue right after a SIGKILL restart; the cause is not known yet.)"""
        durable = self.durable_queues()
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()
        deadline = time.monotonic() + 30
        while (missing := durable - self.durable_queues()) and time.monotonic() < deadline:
            time.sleep(0.2)  # waiting on an external process: no event to await
        if missing:
            warnings.warn(
                f"RabbitMQ lost durable queues {sorted(missing)} over a "
                f"{'SIGKILL' if kill else 'clean'} restart; its log of the restart:\n"
                f"{self.restart_log(missing)}",
                stacklevel=2,
            )

    def restart_log(self, queues: set[str], lines: int = 60) -> str:
        """What the node logged about `queues`, and what its last boot said about queues,
        recovery, Mnesia, warnings and errors (without the channel errors that clients
        retrying a missing queue fill the log with)."""
        log = self.base_dir / "log" / f"{self.nodename}.log"
        if not log.exists():
            return "(no log)"
        text = log.read_text(errors="replace").splitlines()
        about = [line for line in text if any(queue in line for queue in queues)]
        about = [line for line in about if "channel exception" not in line][:20]
        boots = [index for index, line in enumerate(text) if "Starting RabbitMQ" in line]
        since = text[boots[-1] if boots else 0 :]
        noise = ("Channel error on connection", "caused a channel exception")
        telling = ("queue", "recover", "mnesia", "[error]", "[warning]", "crash")
        boot = [
            line
            for line in since
            if any(word in line.lower() for word in telling)
            and not any(part in line for part in noise)
        ][:lines]
        return "\n".join(["-- lines naming the queues --", *about, "-- the last boot --", *boot])

    def durable_queues(self) -> set[str]:
        """Names of the durable queues in vhost / (from the management API)."""
        with self._management_get("/api/queues/%2F?columns=name,durable", 10) as response:
            return {queue["name"] for queue in json.load(response) if queue["durable"]}

    def _management_get(self, path: str, timeout: float) -> Any:
        """An open response from the management API, as guest."""
        request = urllib.request.Request(f"{self.management_url}{path}")
        request.add_header("Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")  # guest:guest
        return urllib.request.urlopen(request, timeout=timeout)

    def _management_ready(self) -> bool:
        try:
            with self._management_get("/api/overview", 1) as response:
                return response.status == 200
        except OSError:
            return False

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run rabbitmqctl against this node and return its output."""
        result = subprocess.run(
            [str(CTL), "-n", self.nodename, *args],
            env=self._environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return result.stdout

    def set_app_env(self, app: str, key: str, value: str) -> None:
        """Change an application setting of the running node (`value` is an Erlang term)."""
        self.ctl("eval", f"application:set_env({app}, {key}, {value}).")

    def kill(self) -> None:
        """SIGKILL the node (its start script and the Erlang VM) as a crash would."""
        if self.process is None:
            return
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        if self.process is None:
            return
        self._end(signal.SIGTERM)

    def _end(self, how: signal.Signals) -> None:
        """Signal the node's process group, and return once the Erlang VM itself is gone: it is
        a child of the start script, which dies first, and a node started again on the same
        data while the old VM still exits is not a restart."""
        assert self.process is not None
        group = self.process.pid  # start_new_session: the script leads its own process group
        members = _group_members(group)
        try:
            os.killpg(group, how)
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        self.process = None
        deadline = time.monotonic() + 30
        while any(running(member) for member in members):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
                raise RuntimeError(f"RabbitMQ node {self.nodename} outlived its end by 30 s")
            time.sleep(0.05)  # an exiting process outside our children: nothing to await

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _group_members(group: int) -> list[psutil.Process]:
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(process.pid) == group:
                members.append(process)
    return members
