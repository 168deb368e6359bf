"""The `tui-queue` command line: argparse wiring only; each subcommand lives in its layer."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _add_broker_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "broker",
        help="run the embedded AMQP 0-9-1 broker in the foreground",
        description="Run the embedded AMQP 0-9-1 broker (RabbitMQ 3.10 compatible) in the "
        "foreground.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=5672, help="AMQP port (default 5672; 0 picks a free port)"
    )
    parser.add_argument("--user", default="guest", help="the one user's name (default guest)")
    parser.add_argument(
        "--password", default="guest", help="the one user's password (default guest)"
    )
    parser.add_argument(
        "--consumer-timeout",
        type=int,
        default=1_800_000,
        metavar="MS",
        help="close a channel whose oldest unacked delivery is older than this (default 1800000)",
    )
    parser.add_argument(
        "--heartbeat",
        type=int,
        default=60,
        metavar="S",
        help="heartbeat offered to clients (default 60)",
    )
    parser.add_argument(
        "--management-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve the read-only management HTTP API subset here (0 picks a free port)",
    )
    parser.add_argument(
        "--data-dir", default=None, metavar="DIR", help="where durable queues and messages live"
    )
    parser.set_defaults(handler=_run_broker)


def _run_broker(args: argparse.Namespace) -> int:
    from tui_queue.broker.config import BrokerConfig
    from tui_queue.broker.main import run_foreground

    config = BrokerConfig(
        host=args.host,
        port=args.port,
        user=args.user,
        password=args.password,
        consumer_timeout_ms=args.consumer_timeout,
        heartbeat=args.heartbeat,
        management_port=args.management_port,
        data_dir=args.data_dir,
    )
    return run_foreground(config)


_SCENARIOS = ("round-robin", "heavy-light", "kill", "auto-ack-kill", "forgotten-ack", "durability")
_TUTORIAL_URL = "amqp://guest:guest@localhost:5672/"


def _add_queue_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", default="task_queue", help="queue name (default task_queue)")
    parser.add_argument(
        "--queue-type",
        choices=("classic", "quorum"),
        default="classic",
        help="declare the queue as classic (default) or quorum; it must match an existing queue",
    )


def _add_run_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a tutorial scenario headless and print what the broker did",
        description="Run a scenario of the work-queues tutorial headless and report the outcome. "
        "Without --url an embedded broker is started for the run. Exit status: 0 when every "
        "check holds, 3 when a check fails, 1 when the scenario could not run.",
    )
    parser.add_argument(
        "scenario", choices=_SCENARIOS, metavar="SCENARIO", help=", ".join(_SCENARIOS)
    )
    parser.add_argument("--url", default=None, help="AMQP URL of a broker (default: embedded)")
    parser.add_argument(
        "--management-url", default=None, help="management API (default http://HOST:15672)"
    )
    parser.add_argument("--workers", type=int, default=None, metavar="N", help="number of workers")
    parser.add_argument("--prefetch", type=int, default=None, metavar="N", help="prefetch count")
    parser.add_argument(
        "--seconds-per-dot", type=float, default=0.1, metavar="S", help="work per dot (default 0.1)"
    )
    parser.add_argument(
        "--queue", default=None, help="queue to use (default: a fresh one, deleted afterwards)"
    )
    parser.add_argument(
        "--kill-mode",
        choices=("crash", "clean", "hang", "cancel"),
        default="crash",
        help="how the kill scenarios kill a worker (default crash)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=_run_scenario)


def _run_scenario(args: argparse.Namespace) -> int:
    from tui_queue.engine.headless import run_headless

    return run_headless(
        args.scenario,
        url=args.url,
        management_url=args.management_url,
        workers=args.workers,
        prefetch=args.prefetch,
        seconds_per_dot=args.seconds_per_dot,
        queue=args.queue,
        kill_mode=args.kill_mode,
        as_json=args.json,
    )


def _add_new_task_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "new-task",
        help="the tutorial's new_task.py: publish one task",
        description="Publish one persistent task to the queue, as the tutorial's new_task.py.",
    )
    parser.add_argument(
        "words", nargs="*", metavar="WORDS", help='the task (default "Hello World!")'
    )
    parser.add_argument("--url", default=_TUTORIAL_URL, help=f"AMQP URL (default {_TUTORIAL_URL})")
    parser.add_argument("--transient", action="store_true", help="publish with delivery_mode 1")
    _add_queue_arguments(parser)
    parser.set_defaults(handler=_run_new_task)


def _run_new_task(args: argparse.Namespace) -> int:
    from tui_queue.engine.config import QueueSpec, QueueType, SettingsError
    from tui_queue.engine.connect import BrokerConnectError
    from tui_queue.engine.tutorial import fail, new_task

    try:
        queue = QueueSpec(name=args.queue, queue_type=QueueType(args.queue_type))
        message = new_task(args.url, args.words, queue, persistent=not args.transient)
    except (BrokerConnectError, SettingsError) as error:
        return fail(str(error))
    print(f" [x] Sent {message!r}")
    return 0


def _add_worker_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="the tutorial's worker.py: consume and work until Ctrl+C",
        description="Consume tasks as the tutorial's worker.py: prefetch 1, one second of work "
        "per dot, ack after the work.",
    )
    parser.add_argument("--url", default=_TUTORIAL_URL, help=f"AMQP URL (default {_TUTORIAL_URL})")
    parser.add_argument("--prefetch", type=int, default=1, metavar="N", help="prefetch (default 1)")
    parser.add_argument(
        "--seconds-per-dot", type=float, default=1.0, metavar="S", help="work per dot (default 1)"
    )
    _add_queue_arguments(parser)
    parser.set_defaults(handler=_run_worker)


def _run_worker(args: argparse.Namespace) -> int:
    from tui_queue.engine.config import (
        QueueSpec,
        QueueType,
        SettingsError,
        validate_prefetch,
        validate_seconds_per_dot,
    )
    from tui_queue.engine.connect import BrokerConnectError
    from tui_queue.engine.tutorial import fail, run_worker

    try:
        queue = QueueSpec(name=args.queue, queue_type=QueueType(args.queue_type))
        prefetch = validate_prefetch(args.prefetch)
        seconds = validate_seconds_per_dot(args.seconds_per_dot)
        return run_worker(args.url, queue, prefetch=prefetch, seconds_per_dot=seconds)
    except (BrokerConnectError, SettingsError) as error:
        return fail(str(error))


def _add_app_arguments(parser: argparse.ArgumentParser) -> None:
    """The dashboard's options (no subcommand); dests prefixed so no subcommand's clash."""
    parser.add_argument(
        "--url",
        dest="app_url",
        default=None,
        metavar="URL",
        help="AMQP URL of a broker (default: embedded)",
    )
    parser.add_argument(
        "--management-url",
        dest="app_management_url",
        default=None,
        metavar="URL",
        help="its management API (default http://HOST:15672, else passive declare)",
    )
    parser.add_argument(
        "--workers", dest="app_workers", type=int, default=2, metavar="N", help="default 2"
    )
    parser.add_argument(
        "--prefetch",
        dest="app_prefetch",
        type=int,
        default=0,
        metavar="N",
        help="prefetch of every worker (default 0: no limit, round-robin)",
    )
    parser.add_argument(
        "--seconds-per-dot",
        dest="app_seconds_per_dot",
        type=float,
        default=1.0,
        metavar="S",
        help="work per dot in a task (default 1, as the tutorial)",
    )
    parser.add_argument(
        "--queue",
        dest="app_queue",
        default="task_queue",
        metavar="NAME",
        help="queue name (default task_queue)",
    )
    parser.add_argument(
        "--queue-type",
        dest="app_queue_type",
        choices=("classic", "quorum"),
        default="classic",
        help="declare the queue as classic (default) or quorum; it must match an existing queue",
    )
    parser.add_argument(
        "--data-dir",
        dest="app_data_dir",
        default=None,
        metavar="DIR",
        help="embedded broker's store (default: a temporary directory)",
    )


def _run_app(args: argparse.Namespace) -> int:
    # Textual is imported here only: the subcommands never pay for it.
    from tui_queue.engine import QueueType, SettingsError

    try:
        from tui_queue.ui.options import LabOptions

        options = LabOptions(
            url=args.app_url,
            management_url=args.app_management_url,
            workers=args.app_workers,
            prefetch=args.app_prefetch,
            seconds_per_dot=args.app_seconds_per_dot,
            queue=args.app_queue,
            queue_type=QueueType(args.app_queue_type),
            data_dir=args.app_data_dir,
        )
    except SettingsError as error:
        print(f"tui-queue: {error}", file=sys.stderr)
        return 2
    from tui_queue.ui.launch import run_app

    return run_app(options)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tui-queue",
        description="A terminal lab for RabbitMQ work queues. With no COMMAND, open the "
        "dashboard on the embedded broker (or on --url).",
    )
    _add_app_arguments(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_broker_parser(subparsers)
    _add_run_parser(subparsers)
    _add_new_task_parser(subparsers)
    _add_worker_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        return _run_app(args)
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())
