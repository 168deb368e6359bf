"""The work-queue engine: workers, publisher, ledger and stats over pika. No UI in here.

Import what the dashboard and scripts need from this package; the modules beneath are the detail.
"""

import logging

from tui_queue.engine.broker_control import BrokerControl
from tui_queue.engine.config import (
    AckTiming,
    EngineConfig,
    KillMode,
    QueueSpec,
    QueueType,
    SettingsError,
    WorkerSettings,
    describe_mode,
)
from tui_queue.engine.connect import BrokerConnectError
from tui_queue.engine.engine import Engine, EngineInfo, QueueMismatch, UnknownWorker
from tui_queue.engine.events import (
    PER_MESSAGE_EVENTS,
    BrokerState,
    BrokerStateChanged,
    EngineError,
    Event,
    EventBus,
    EventWaiter,
    MessageAcked,
    MessageLost,
    MessagePublished,
    MessageReceived,
    MessageRequeued,
    PublishOutcome,
    QueuePurged,
    QueueRedeclared,
    StatsUpdated,
    Subscription,
    WorkDone,
    WorkerAdded,
    WorkerKilled,
    WorkerRemoved,
    WorkerSettingsChanged,
    WorkerState,
    WorkerStateChanged,
    WorkStarted,
    events_but_per_message,
)
from tui_queue.engine.ledger import InvariantCheck, Ledger, LedgerTotals, WorkerCounts
from tui_queue.engine.publisher import Published, PublishTicket, TaskTooLarge
from tui_queue.engine.recent import RecentTask, RecentTasks, RecentView, Settled
from tui_queue.engine.stats import QueueStats, StatsSource
from tui_queue.engine.worker import CurrentTask, WorkerSnapshot

# A killed worker is a dropped socket, which pika logs as an ERROR. Python's last-resort handler
# would print that on stderr (over the dashboard) when the application configured no logging;
# a NullHandler stops that while still passing records to any handler the application sets up.
logging.getLogger("pika").addHandler(logging.NullHandler())

__all__ = [
    "AckTiming",
    "BrokerConnectError",
    "BrokerControl",
    "BrokerState",
    "BrokerStateChanged",
    "CurrentTask",
    "Engine",
    "EngineConfig",
    "EngineError",
    "EngineInfo",
    "Event",
    "EventBus",
    "EventWaiter",
    "InvariantCheck",
    "KillMode",
    "Ledger",
    "LedgerTotals",
    "MessageAcked",
    "MessageLost",
    "MessagePublished",
    "MessageReceived",
    "MessageRequeued",
    "PER_MESSAGE_EVENTS",
    "PublishOutcome",
    "PublishTicket",
    "Published",
    "QueueMismatch",
    "QueuePurged",
    "QueueRedeclared",
    "QueueSpec",
    "QueueStats",
    "QueueType",
    "RecentTask",
    "RecentTasks",
    "RecentView",
    "SettingsError",
    "Settled",
    "StatsSource",
    "StatsUpdated",
    "Subscription",
    "TaskTooLarge",
    "UnknownWorker",
    "WorkDone",
    "WorkStarted",
    "WorkerAdded",
    "WorkerCounts",
    "WorkerKilled",
    "WorkerRemoved",
    "WorkerSettings",
    "WorkerSettingsChanged",
    "WorkerSnapshot",
    "WorkerState",
    "WorkerStateChanged",
    "events_but_per_message",
    "describe_mode",
]
