"""`tui-queue run SCENARIO`: a broker if none is given, the scenario, its report; exit codes."""

from __future__ import annotations

import sys
from dataclasses import replace

from tui_queue.engine.broker_process import BrokerProcess, BrokerStartError
from tui_queue.engine.config import KillMode, SettingsError
from tui_queue.engine.connect import BrokerConnectError
from tui_queue.engine.report import print_report
from tui_queue.engine.scenarios import ScenarioError, ScenarioOptions, run_scenario

EXIT_OK = 0
EXIT_ERROR = 1  # could not run: broker unreachable, bad input, timeout
EXIT_CHECKS_FAILED = 3  # ran, but the outcome was not what the tutorial promises


def run_headless(
    scenario: str,
    url: str | None,
    management_url: str | None,
    workers: int | None,
    prefetch: int | None,
    seconds_per_dot: float,
    queue: str | None,
    kill_mode: str,
    as_json: bool,
) -> int:
    broker: BrokerProcess | None = None
    try:
        # Built first: a nonsense setting is refused before any broker starts.
        options = ScenarioOptions(
            url=url or "",
            management_url=management_url,
            workers=workers,
            prefetch=prefetch,
            seconds_per_dot=seconds_per_dot,
            queue=queue,
            kill_mode=KillMode(kill_mode),
        )
        if url is None:
            broker = BrokerProcess()  # embedded, free ports, a throwaway data dir
            broker.start()
            options = replace(
                options, url=broker.url, management_url=broker.management_url, control=broker
            )
        report = run_scenario(scenario, options)
    except (BrokerConnectError, BrokerStartError, ScenarioError, SettingsError) as error:
        print(f"tui-queue run: {error}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if broker is not None:
            broker.stop()
    print_report(report, as_json)
    return EXIT_OK if report.ok else EXIT_CHECKS_FAILED
