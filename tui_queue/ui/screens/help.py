"""`?`: what the tutorial teaches, in a few lines each, pointing at what is on screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# The work-queues tutorial, live

**Round-robin.** With prefetch 0 (no limit) the broker hands each new message to the next
consumer in turn, busy or not. Type the tutorial's five tasks (`First message.` …
`Fifth message.....`): w1 receives #1, #3, #5 and w2 #2, #4 — see each panel's *Received* list.

**Message acknowledgment.** A worker acks after its work (manual ack, as the tutorial teaches);
until then the message counts as *unacked* in the queue bar. Kill a busy worker (`k`, then
*crash*): the broker takes its unacked messages back and delivers them to another worker, marked
**redelivered**. Nothing is lost.

**Auto-ack.** With auto-ack (`u`) the broker forgets a message as soon as it is sent. Kill a worker
holding some: they are **lost** — marked in its list and counted in the totals line.

**Forgotten acknowledgment.** With forget-ack (`g`) the work is done and the ack never sent:
*unacked* climbs to the prefetch, the worker stalls, and the messages come back only when it dies.

**Durability.** `task_queue` is durable and every task persistent (delivery_mode 2). Restart the
broker (`R`): they survive, and the workers show *reconnecting* and come back by themselves.

**Fair dispatch.** Publish a heavy/light batch (`b`) with prefetch 0: one worker gets every heavy
task and stays busy. Press `1` — `basic_qos(prefetch_count=1)` — and a worker gets a new message
only once it has acked the last one: the work evens out.

**The totals line** is the tutorial's bookkeeping: published = done + ready + unacked + lost.

| Key | Does | Key | Does |
|---|---|---|---|
| `t` / Esc | type a task / leave the field | `a` | add a worker |
| `c` | publish N copies | `b` | heavy/light batch |
| `k` | kill the selected worker | `v` | revive it |
| `p` | pause / resume it | `-` | remove it |
| `0` / `1` | prefetch 0 / 1, all workers | `s` | settings (prefetch N, acks, speed) |
| `u` | auto-ack on/off, all | `e` | ack before/after work, all |
| `g` | forget-ack on/off, all | `x` | purge the queue |
| `R` | restart the broker | `T` | queue type classic/quorum |
| `l` | event log | `ctrl+p` | every command |
| ←/→, Tab, click | select a worker | `q` | quit |
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close help"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body", classes="dialog"):
            yield Markdown(HELP)

    def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
