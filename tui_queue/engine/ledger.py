"""The life of every message: published, delivered to whom, done, acked, requeued, lost.

Each message the engine published is, at any moment, in exactly one place:

    ready     in the queue (never delivered, or given back)
    unacked   delivered to a worker and still ackable: the broker would take it back
    in_hand   at a worker but no longer in the broker (auto-ack, or acked before the work)
    done      finished and gone from the broker
    lost      gone from the broker but never finished (its worker died with it in hand)
    purged    removed from the queue by a purge

so published = ready + unacked + in_hand + done + lost + purged at every instant, and at rest
(nothing in hand) that is the tutorial's published = done + ready + unacked + lost.

Memory is bounded by what is in flight, not by history: a per-message record exists only while a
message is ready, unacked or in hand (the broker holds those too). A finished message costs one
byte in `_final`, its final place indexed by sequence number (1M messages = 1 MB, the only thing
that grows with history), which is what lets the ledger spot exactly a message done twice or a
"lost" one that comes back. The recent log is a fixed-size deque of the rare happenings (requeues,
losses, duplicates), never one per message. Externals (published by others) are followed only
until they settle.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from enum import IntEnum

from tui_queue.engine.tasks import MessageIds


class Place(IntEnum):
    READY = 0
    UNACKED = 1
    IN_HAND = 2


class Final(IntEnum):
    UNFINISHED = 0
    DONE = 1
    LOST = 2
    PURGED = 3
    UNSENT = 4  # the publish never reached the broker


class _Msg:
    """An unfinished message of ours."""

    __slots__ = ("holder", "persistent", "place", "worked")

    def __init__(self, persistent: bool) -> None:
        self.place = Place.READY
        self.holder: str | None = None
        self.worked = False  # finished at least once: a further finish is a duplicate
        self.persistent = persistent


class _External:
    """A delivery of a message published outside this engine; followed until it settles."""

    __slots__ = ("holder", "place", "worked")

    def __init__(self, holder: str, place: Place) -> None:
        self.holder = holder
        self.place = place
        self.worked = False


class _Counts:
    __slots__ = (
        "acked",
        "busy",
        "done",
        "duplicates",
        "external_received",
        "lost",
        "received",
        "redelivered",
        "requeued",
    )

    def __init__(self) -> None:
        self.received = 0
        self.redelivered = 0
        self.done = 0
        self.acked = 0
        self.busy = 0.0
        self.requeued = 0
        self.lost = 0
        self.duplicates = 0
        self.external_received = 0


# Key of a delivery inside the ledger: our sequence number, or a token for an external one.
Key = int | tuple[str, int]


@dataclass(slots=True)
class Delivery:
    """What the books say about a delivery (built once per message: not frozen, as that costs)."""

    key: Key
    seq: int | None
    external: bool
    duplicate_delivery: bool  # the message had been done already
    requeued_from: str | None  # it was still held by this worker: the broker took it back


@dataclass(frozen=True, slots=True)
class Released:
    key: Key
    seq: int | None
    message_id: str | None
    worker: str | None


@dataclass(frozen=True, slots=True)
class DeathReport:
    requeued: tuple[Released, ...]
    lost: tuple[Released, ...]


@dataclass(frozen=True, slots=True)
class WorkerCounts:
    worker: str
    received: int
    redelivered: int
    done: int
    acked: int
    busy: float  # seconds of work done
    requeued: int  # messages taken back from it by the broker
    lost: int
    duplicates: int  # tasks it finished that had been finished before
    external_received: int
    held: int  # unacked or in hand right now


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    published: int
    ready: int
    unacked: int
    in_hand: int
    done: int  # distinct messages finished
    lost: int
    purged: int
    unsent: int
    completions: int  # finishes, duplicates included
    duplicates: int  # finishes of an already finished message
    delivered: int
    redelivered: int
    requeued: int
    acked: int
    external_received: int
    external_done: int
    external_held: int  # unacked or in hand
    external_lost: int
    external_unacked: int = 0  # of external_held, those the broker counts unacked

    @property
    def balanced(self) -> bool:
        return self.published == (
            self.ready + self.unacked + self.in_hand + self.done + self.lost + self.purged
        )


@dataclass(frozen=True, slots=True)
class InvariantCheck:
    """published = done + ready + unacked + lost (+ in hand + purged), ready/unacked as given."""

    holds: bool
    published: int
    done: int
    ready: int
    unacked: int
    in_hand: int
    lost: int
    purged: int
    duplicates: int
    source: str  # "broker": ready/unacked as the broker reported them; "ledger": its own view

    @property
    def difference(self) -> int:
        return self.published - (
            self.done + self.ready + self.unacked + self.in_hand + self.lost + self.purged
        )


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    at: float
    kind: str  # "requeued", "lost", "duplicate", "returned" (a finished message came back)
    worker: str | None
    message_id: str | None
    detail: str = ""


class Ledger:
    """Thread-safe: workers, the publisher and readers call it from their own threads."""

    def __init__(self, ids: MessageIds | None = None, recent: int = 500) -> None:
        self.ids = ids or MessageIds.fresh()
        self._lock = threading.Lock()
        self._open: dict[int, _Msg] = {}
        self._external: dict[tuple[str, int], _External] = {}
        self._external_seq = 0
        self._final = bytearray(1)  # index = seq; index 0 unused
        self._held: dict[str, set[Key]] = {}
        self._workers: dict[str, _Counts] = {}
        self._recent: deque[LedgerEntry] = deque(maxlen=recent)
        self._published = 0
        self._ready = 0
        self._unacked = 0
        self._in_hand = 0
        self._done = 0
        self._lost = 0
        self._purged = 0
        self._unsent = 0
        self._completions = 0
        self._duplicates = 0
        self._delivered = 0
        self._redelivered = 0
        self._requeued = 0
        self._acked = 0
        self._ext_received = 0
        self._ext_done = 0
        self._ext_lost = 0

    # --- helpers (lock held) ------------------------------------------------------------------

    def _counts(self, worker: str) -> _Counts:
        counts = self._workers.get(worker)
        if counts is None:
            counts = self._workers[worker] = _Counts()
            self._held[worker] = set()
        return counts

    def _leave(self, msg: _Msg) -> None:
        """Take msg out of its current place's count (and its holder's hand)."""
        if msg.place is Place.READY:
            self._ready -= 1
        elif msg.place is Place.UNACKED:
            self._unacked -= 1
        else:
            self._in_hand -= 1

    def _enter(self, msg: _Msg, place: Place, holder: str | None) -> None:
        msg.place = place
        msg.holder = holder
        if place is Place.READY:
            self._ready += 1
        elif place is Place.UNACKED:
            self._unacked += 1
        else:
            self._in_hand += 1

    def _release(self, seq: int, msg: _Msg) -> None:
        if msg.holder is not None:
            self._held[msg.holder].discard(seq)

    def _finish(self, seq: int, msg: _Msg, final: Final) -> None:
        self._leave(msg)
        self._release(seq, msg)
        del self._open[seq]
        self._final[seq] = final
        if final is Final.DONE:
            self._done += 1
        elif final is Final.LOST:
            self._lost += 1
        elif final is Final.PURGED:
            self._purged += 1

    def _reopen(self, seq: int) -> _Msg | None:
        """A finished message is back (redelivered, or finished late): reopen its record."""
        final = Final(self._final[seq])
        msg = _Msg(persistent=True)
        if final is Final.DONE:
            self._done -= 1
            msg.worked = True
        elif final is Final.LOST:
            self._lost -= 1
        elif final is Final.PURGED:
            self._purged -= 1
        elif final is Final.UNSENT:
            self._unsent -= 1
            self._published += 1
        else:
            return None
        self._final[seq] = Final.UNFINISHED
        self._open[seq] = msg
        self._ready += 1
        self._recent.append(LedgerEntry(time.monotonic(), "returned", None, self.ids.make(seq)))
        return msg

    def _lookup(self, seq: int) -> _Msg | None:
        msg = self._open.get(seq)
        if msg is None and 0 < seq < len(self._final):
            msg = self._reopen(seq)
        return msg

    # --- publishing ---------------------------------------------------------------------------

    def reserve(self, persistent: bool = True) -> tuple[int, str]:
        """A new message, counted ready before it is sent so a fast worker never beats the books."""
        with self._lock:
            seq = len(self._final)
            self._final.append(Final.UNFINISHED)
            self._open[seq] = _Msg(persistent)
            self._published += 1
            self._ready += 1
            return seq, self.ids.make(seq)

    def unsent(self, seq: int) -> None:
        """The publish of seq never reached the broker (or the broker refused it)."""
        with self._lock:
            msg = self._open.get(seq)
            if msg is None or msg.place is not Place.READY:
                return
            self._finish(seq, msg, Final.UNSENT)
            self._published -= 1
            self._unsent += 1

    # --- deliveries ---------------------------------------------------------------------------

    def delivered(
        self, worker: str, message_id: str | None, redelivered: bool, auto_ack: bool
    ) -> Delivery:
        seq = self.ids.parse(message_id)
        place = Place.IN_HAND if auto_ack else Place.UNACKED
        with self._lock:
            counts = self._workers.get(worker) or self._counts(worker)
            counts.received += 1
            self._delivered += 1
            if redelivered:
                counts.redelivered += 1
                self._redelivered += 1
            msg = self._lookup(seq) if seq is not None else None
            if seq is None or msg is None:
                self._external_seq += 1
                key: tuple[str, int] = ("x", self._external_seq)
                self._external[key] = _External(worker, place)
                self._held[worker].add(key)
                counts.external_received += 1
                self._ext_received += 1
                return Delivery(key, None, True, False, None)
            if msg.place is Place.READY:
                # The common case, kept short: every message takes this path once.
                self._ready -= 1
                msg.place = place
                msg.holder = worker
                if auto_ack:
                    self._in_hand += 1
                else:
                    self._unacked += 1
                self._held[worker].add(seq)
                return Delivery(seq, seq, False, msg.worked, None)
            requeued_from = None
            if msg.place is not Place.READY:
                # Still held by someone in our books, yet the broker delivered it again: the broker
                # took it back (hung connection dropped, channel closed, ack never arrived).
                requeued_from = msg.holder
                if msg.holder is not None:
                    self._counts(msg.holder).requeued += 1
                self._requeued += 1
                self._recent.append(
                    LedgerEntry(time.monotonic(), "requeued", msg.holder, message_id, "redelivered")
                )
            self._leave(msg)
            self._release(seq, msg)
            self._enter(msg, place, worker)
            self._held[worker].add(seq)
            return Delivery(seq, seq, False, msg.worked, requeued_from)

    def acked(self, worker: str, key: Key) -> None:
        with self._lock:
            self._acked_locked(worker, key)

    def _acked_locked(self, worker: str, key: Key) -> None:
        if isinstance(key, tuple):
            ext = self._external.get(key)
            if ext is None or ext.holder != worker or ext.place is not Place.UNACKED:
                return
            self._counts(worker).acked += 1
            self._acked += 1
            if ext.worked:
                self._drop_external(key, ext)
            else:
                ext.place = Place.IN_HAND
            return
        msg = self._open.get(key)
        # An ack from a worker that no longer holds the message is stale (its channel is gone).
        if msg is None or msg.holder != worker or msg.place is not Place.UNACKED:
            return
        self._counts(worker).acked += 1
        self._acked += 1
        if msg.worked:
            self._finish(key, msg, Final.DONE)
        else:
            self._leave(msg)
            self._enter(msg, Place.IN_HAND, worker)

    def done(self, worker: str, key: Key, busy: float, acked: bool = False) -> bool:
        """A worker finished a task (and, with `acked`, acked it right after: one call instead
        of two on the hot path). True when that message had been finished before."""
        with self._lock:
            msg = self._open.get(key) if acked and isinstance(key, int) else None
            if (
                isinstance(key, int)
                and msg is not None
                and msg.place is Place.UNACKED
                and msg.holder == worker
                and not msg.worked
            ):
                # The common case, kept short: first finish, acked by its holder.
                counts = self._workers[worker]
                counts.done += 1
                counts.busy += busy
                counts.acked += 1
                self._completions += 1
                self._acked += 1
                self._unacked -= 1
                self._done += 1
                self._held[worker].discard(key)
                del self._open[key]
                self._final[key] = Final.DONE
                return False
            duplicate = self._done_locked(worker, key, busy)
            if acked:
                self._acked_locked(worker, key)
            return duplicate

    def _done_locked(self, worker: str, key: Key, busy: float) -> bool:
        counts = self._counts(worker)
        counts.done += 1
        counts.busy += busy
        self._completions += 1
        if isinstance(key, tuple):
            self._ext_done += 1
            ext = self._external.get(key)
            if ext is not None:
                ext.worked = True
                if ext.place is Place.IN_HAND:
                    self._drop_external(key, ext)
            return False
        msg = self._open.get(key)
        if msg is None:
            return self._done_after_finish(key, worker, counts)
        duplicate = msg.worked
        if duplicate:
            self._count_duplicate(key, worker, counts)
        msg.worked = True
        if msg.place is Place.IN_HAND and msg.holder == worker:
            self._finish(key, msg, Final.DONE)
        elif msg.place is Place.READY and msg.holder is None:
            # Finished by a worker the books had already given up on (written off, or the
            # broker took it back): it stays ready, but a further finish is a duplicate.
            pass
        return duplicate

    def _done_after_finish(self, seq: int, worker: str, counts: _Counts) -> bool:
        """A finish for a message the books had closed: done again, or done after all."""
        if not 0 < seq < len(self._final):
            return False
        final = Final(self._final[seq])
        if final is Final.DONE:
            self._count_duplicate(seq, worker, counts)
            return True
        if final in (Final.LOST, Final.PURGED):
            # Written off while a worker still had it (broker restart, purge): it did get done.
            if final is Final.LOST:
                self._lost -= 1
            else:
                self._purged -= 1
            self._final[seq] = Final.DONE
            self._done += 1
        return False

    def _count_duplicate(self, seq: int, worker: str, counts: _Counts) -> None:
        counts.duplicates += 1
        self._duplicates += 1
        self._recent.append(LedgerEntry(time.monotonic(), "duplicate", worker, self.ids.make(seq)))

    def requeued(self, worker: str, key: Key, reason: str) -> None:
        """The worker gave a held delivery back (basic.nack/reject with requeue)."""
        with self._lock:
            if isinstance(key, tuple):
                ext = self._external.pop(key, None)
                if ext is not None:
                    self._held[ext.holder].discard(key)
                return
            msg = self._open.get(key)
            if msg is None or msg.holder != worker or msg.place is not Place.UNACKED:
                return
            self._counts(worker).requeued += 1
            self._requeued += 1
            self._leave(msg)
            self._release(key, msg)
            self._enter(msg, Place.READY, None)
            self._recent.append(
                LedgerEntry(time.monotonic(), "requeued", worker, self.ids.make(key), reason)
            )

    def _drop_external(self, key: tuple[str, int], ext: _External) -> None:
        del self._external[key]
        self._held[ext.holder].discard(key)

    # --- failures -----------------------------------------------------------------------------

    def worker_died(self, worker: str, reason: str = "worker died") -> DeathReport:
        """Its connection is gone: unacked messages go back to the queue, those in hand are lost."""
        requeued: list[Released] = []
        lost: list[Released] = []
        now = time.monotonic()
        with self._lock:
            counts = self._counts(worker)
            for key in sorted(self._held[worker], key=_key_order):
                if isinstance(key, tuple):
                    ext = self._external.pop(key)
                    if ext.place is Place.UNACKED:
                        requeued.append(Released(key, None, None, worker))
                        counts.requeued += 1
                        self._requeued += 1
                    else:
                        lost.append(Released(key, None, None, worker))
                        counts.lost += 1
                        self._ext_lost += 1
                    continue
                msg = self._open[key]
                message_id = self.ids.make(key)
                if msg.place is Place.UNACKED:
                    self._leave(msg)
                    self._enter(msg, Place.READY, None)
                    counts.requeued += 1
                    self._requeued += 1
                    requeued.append(Released(key, key, message_id, worker))
                    self._recent.append(LedgerEntry(now, "requeued", worker, message_id, reason))
                else:
                    msg.holder = worker
                    self._finish(key, msg, Final.LOST)
                    counts.lost += 1
                    lost.append(Released(key, key, message_id, worker))
                    self._recent.append(LedgerEntry(now, "lost", worker, message_id, reason))
            self._held[worker] = set()
        return DeathReport(tuple(requeued), tuple(lost))

    def purged(self) -> list[Released]:
        """The queue was purged: every message ready in the books is gone."""
        with self._lock:
            gone = [seq for seq, msg in self._open.items() if msg.place is Place.READY]
            for seq in gone:
                self._finish(seq, self._open[seq], Final.PURGED)
            return [Released(seq, seq, self.ids.make(seq), None) for seq in gone]

    def broker_restarting(self, survives: bool) -> tuple[list[Released], list[Released]]:
        """The broker goes down: held unacked messages return to the queue; with `survives` false
        (transient queue, or no durable store) every queued message is gone, else transient ones
        are. Returns (requeued, lost). Messages in a worker's hand are the workers' business."""
        requeued: list[Released] = []
        lost: list[Released] = []
        now = time.monotonic()
        with self._lock:
            for seq in sorted(self._open):
                msg = self._open[seq]
                if msg.place is Place.IN_HAND:
                    continue
                holder = msg.holder
                message_id = self.ids.make(seq)
                if msg.place is Place.UNACKED and holder is not None:
                    self._counts(holder).requeued += 1
                    self._requeued += 1
                    requeued.append(Released(seq, seq, message_id, holder))
                self._leave(msg)
                self._release(seq, msg)
                self._enter(msg, Place.READY, None)
                if not (survives and msg.persistent):
                    self._finish(seq, msg, Final.LOST)
                    lost.append(Released(seq, seq, message_id, None))
                    self._recent.append(
                        LedgerEntry(now, "lost", None, message_id, "broker restart")
                    )
        return requeued, lost

    def write_off_ready(self, reason: str) -> list[Released]:
        """Count every message still ready in the books as lost (the broker no longer has them)."""
        now = time.monotonic()
        with self._lock:
            gone = [seq for seq, msg in self._open.items() if msg.place is Place.READY]
            for seq in gone:
                self._finish(seq, self._open[seq], Final.LOST)
                self._recent.append(LedgerEntry(now, "lost", None, self.ids.make(seq), reason))
            return [Released(seq, seq, self.ids.make(seq), None) for seq in gone]

    # --- reading ------------------------------------------------------------------------------

    def totals(self) -> LedgerTotals:
        with self._lock:
            return LedgerTotals(
                published=self._published,
                ready=self._ready,
                unacked=self._unacked,
                in_hand=self._in_hand,
                done=self._done,
                lost=self._lost,
                purged=self._purged,
                unsent=self._unsent,
                completions=self._completions,
                duplicates=self._duplicates,
                delivered=self._delivered,
                redelivered=self._redelivered,
                requeued=self._requeued,
                acked=self._acked,
                external_received=self._ext_received,
                external_done=self._ext_done,
                external_held=len(self._external),
                external_lost=self._ext_lost,
                external_unacked=self._external_unacked(),
            )

    def _external_unacked(self) -> int:
        return sum(1 for ext in self._external.values() if ext.place is Place.UNACKED)

    def unacked_count(self) -> int:
        """Ackable deliveries held by our workers, ours and external: the fallback's 'unacked'."""
        with self._lock:
            return self._unacked + self._external_unacked()

    def worker_counts(self, worker: str) -> WorkerCounts:
        with self._lock:
            return self._snapshot(worker)

    def all_worker_counts(self) -> tuple[WorkerCounts, ...]:
        with self._lock:
            return tuple(self._snapshot(worker) for worker in self._workers)

    def _snapshot(self, worker: str) -> WorkerCounts:
        counts = self._counts(worker)
        return WorkerCounts(
            worker=worker,
            received=counts.received,
            redelivered=counts.redelivered,
            done=counts.done,
            acked=counts.acked,
            busy=counts.busy,
            requeued=counts.requeued,
            lost=counts.lost,
            duplicates=counts.duplicates,
            external_received=counts.external_received,
            held=len(self._held[worker]),
        )

    def held_by(self, worker: str) -> int:
        with self._lock:
            return len(self._held.get(worker, ()))

    def check(
        self, broker_ready: int | None = None, broker_unacked: int | None = None
    ) -> InvariantCheck:
        """The invariant, with the broker's ready/unacked when given (meaningful at rest, and only
        for a queue nobody else publishes to), else with the ledger's own."""
        totals = self.totals()
        source = "ledger"
        ready, unacked = totals.ready, totals.unacked
        if broker_ready is not None and broker_unacked is not None:
            source = "broker"
            ready = broker_ready
            # External deliveries in hand are not unacked in the broker: only the others count.
            unacked = broker_unacked - totals.external_unacked
        check = InvariantCheck(
            holds=False,
            published=totals.published,
            done=totals.done,
            ready=ready,
            unacked=unacked,
            in_hand=totals.in_hand,
            lost=totals.lost,
            purged=totals.purged,
            duplicates=totals.duplicates,
            source=source,
        )
        return replace(check, holds=check.difference == 0)

    def recent(self) -> list[LedgerEntry]:
        with self._lock:
            return list(self._recent)


def _key_order(key: Key) -> tuple[int, int]:
    if isinstance(key, tuple):
        return (1, key[1])
    return (0, key)
