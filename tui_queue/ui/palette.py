"""Every lab command in the command palette (ctrl+p), named for the worker it acts on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from textual.app import SystemCommand

from tui_queue.engine import AckTiming, QueueType

if TYPE_CHECKING:
    from tui_queue.ui.app import QueueLabApp


def lab_commands(app: QueueLabApp) -> Iterator[SystemCommand]:
    selected = app.selected
    yield SystemCommand(
        "Help", "Round-robin, acks, redelivery, durability, fair dispatch", app.action_help
    )
    yield SystemCommand("Publish copies…", "Publish N copies of a task", app.action_publish_copies)
    yield SystemCommand(
        "Publish heavy/light batch…", "Odd tasks heavy, even light", app.action_heavy_light
    )
    yield SystemCommand("Add a worker", "A new consumer on the queue", app.action_add_worker)
    for prefetch in (0, 1):
        meaning = "no limit: round-robin" if prefetch == 0 else "fair dispatch"
        yield SystemCommand(
            f"Prefetch {prefetch} for all workers",
            f"basic_qos(prefetch_count={prefetch}): {meaning}",
            lambda p=prefetch: app.set_prefetch(p, None),
        )
    yield SystemCommand(
        "Prefetch N, ack mode, seconds per dot…", "The settings dialog", app.action_settings
    )
    for on in (True, False):
        yield SystemCommand(
            f"Auto-ack {'on' if on else 'off'} for all workers",
            "the broker forgets a message once sent" if on else "manual ack, as the tutorial",
            lambda on=on: app.set_auto_ack(on, None),
        )
    for timing in AckTiming:
        yield SystemCommand(
            f"Ack {timing.value} work, all workers",
            "when a manual-ack worker acknowledges a task",
            lambda timing=timing: app.set_ack_timing(timing, None),
        )
    for on in (True, False):
        yield SystemCommand(
            f"Forget ack {'on' if on else 'off'} for all workers",
            "do the work and never ack: unacked climbs, the worker stalls" if on else "ack again",
            lambda on=on: app.set_forget_ack(on, None),
        )
    if selected is not None:
        yield SystemCommand(
            f"Kill {selected}…", "Crash, clean close, hang or cancel its consumer", app.action_kill
        )
        yield SystemCommand(f"Revive {selected}", "A fresh connection", app.action_revive)
        yield SystemCommand(f"Pause/resume {selected}", "Start no new task", app.action_pause)
        yield SystemCommand(f"Remove {selected}", "Stop it cleanly", app.action_remove_worker)
        for prefetch in (0, 1):
            yield SystemCommand(
                f"Prefetch {prefetch} for {selected}",
                "this worker only",
                lambda p=prefetch, w=selected: app.set_prefetch(p, w),
            )
        for on in (True, False):
            yield SystemCommand(
                f"Auto-ack {'on' if on else 'off'} for {selected}",
                "this worker only",
                lambda on=on, w=selected: app.set_auto_ack(on, w),
            )
        for timing in AckTiming:
            yield SystemCommand(
                f"Ack {timing.value} work for {selected}",
                "this worker only",
                lambda timing=timing, w=selected: app.set_ack_timing(timing, w),
            )
        for on in (True, False):
            yield SystemCommand(
                f"Forget ack {'on' if on else 'off'} for {selected}",
                "this worker only",
                lambda on=on, w=selected: app.set_forget_ack(on, w),
            )
    yield SystemCommand(
        "Purge the queue", "queue.purge: ready messages go, held ones stay", app.action_purge
    )
    yield SystemCommand(
        "Restart the broker…", "Kill or stop it cleanly: durability", app.action_restart_broker
    )
    other = "quorum"
    engine = app.engine_or_none(quiet=True)
    if engine is not None and engine.queue_spec().queue_type is QueueType.QUORUM:
        other = "classic"
    yield SystemCommand(
        f"Queue type: redeclare as {other}…",
        "Delete and redeclare (RabbitMQ answers 406 to a mismatched declare)",
        app.action_queue_type,
    )
    yield SystemCommand("Show/hide the event log", "Every engine event", app.action_toggle_log)
