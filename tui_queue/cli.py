"""The `tui-queue` command line: argparse wiring only; each subcommand lives in its layer."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _add_broker_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "broker",
        help="run the embedded AMQP 0-9-1 broker in the foreground",
        description="Run the embedded AMQP 0-9-1 broker (RabbitMQ 3.10 compatible) in the foreground.",
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tui-queue", description="A terminal lab for RabbitMQ work queues."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_broker_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())
