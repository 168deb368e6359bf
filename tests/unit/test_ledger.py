"""The ledger's books, message by message, without a broker."""

from __future__ import annotations

import random
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_queue.engine.ledger import Ledger, LedgerTotals
from tui_queue.engine.tasks import MessageIds


def ledger() -> Ledger:
    return Ledger(MessageIds("tq-test"))


def publish(books: Ledger, count: int, persistent: bool = True) -> list[str]:
    return [books.reserve(persistent)[1] for _ in range(count)]


def places(totals: LedgerTotals) -> tuple[int, int, int, int, int, int]:
    return (totals.ready, totals.unacked, totals.in_hand, totals.done, totals.lost, totals.purged)


def test_manual_ack_after_work() -> None:
    books = ledger()
    (mid,) = publish(books, 1)
    delivery = books.delivered("w1", mid, redelivered=False, auto_ack=False)
    assert (delivery.seq, delivery.external, delivery.requeued_from) == (1, False, None)
    assert places(books.totals()) == (0, 1, 0, 0, 0, 0)
    assert books.done("w1", delivery.key, busy=0.5) is False
    assert places(books.totals()) == (0, 1, 0, 0, 0, 0)  # done, but the broker has it unacked
    books.acked("w1", delivery.key)
    totals = books.totals()
    assert places(totals) == (0, 0, 0, 1, 0, 0) and totals.balanced
    counts = books.worker_counts("w1")
    assert (counts.received, counts.done, counts.acked, counts.busy, counts.held) == (
        1,
        1,
        1,
        0.5,
        0,
    )


def test_auto_ack_death_loses_what_was_in_hand() -> None:
    books = ledger()
    ids = publish(books, 3)
    keys = [books.delivered("w1", mid, False, auto_ack=True).key for mid in ids]
    books.done("w1", keys[0], 0.1)
    report = books.worker_died("w1", "crash")
    assert [item.seq for item in report.lost] == [2, 3] and not report.requeued
    totals = books.totals()
    assert places(totals) == (0, 0, 0, 1, 2, 0) and totals.balanced
    assert books.worker_counts("w1").lost == 2


def test_manual_ack_death_requeues_and_redelivery_goes_to_another() -> None:
    books = ledger()
    ids = publish(books, 2)
    first = books.delivered("w1", ids[0], False, False)
    books.delivered("w1", ids[1], False, False)
    books.acked("w1", first.key)  # acked before the work
    report = books.worker_died("w1")
    assert [i.seq for i in report.lost] == [1] and [i.seq for i in report.requeued] == [2]
    again = books.delivered("w2", ids[1], redelivered=True, auto_ack=False)
    assert again.requeued_from is None  # the books had already taken it back
    books.done("w2", again.key, 0)
    books.acked("w2", again.key)
    totals = books.totals()
    assert places(totals) == (0, 0, 0, 1, 1, 0)
    assert (totals.requeued, totals.redelivered, totals.duplicates) == (1, 1, 0)


def test_redelivery_while_still_held_is_an_implicit_requeue() -> None:
    """A hung worker's message, redelivered after the broker dropped it."""
    books = ledger()
    (mid,) = publish(books, 1)
    books.delivered("hung", mid, False, False)
    again = books.delivered("w2", mid, redelivered=True, auto_ack=False)
    assert again.requeued_from == "hung"
    assert books.worker_counts("hung").requeued == 1
    assert books.held_by("hung") == 0 and books.held_by("w2") == 1
    assert not books.worker_died("hung").requeued  # nothing counted twice


def test_forgotten_ack_redone_is_a_duplicate() -> None:
    books = ledger()
    (mid,) = publish(books, 1)
    first = books.delivered("forgetful", mid, False, False)
    books.done("forgetful", first.key, 0)  # never acked
    assert books.totals().unacked == 1
    books.worker_died("forgetful")
    second = books.delivered("w2", mid, True, False)
    assert second.duplicate_delivery
    assert books.done("w2", second.key, 0) is True
    books.acked("w2", second.key)
    totals = books.totals()
    assert (totals.done, totals.completions, totals.duplicates) == (1, 2, 1)
    assert books.worker_counts("w2").duplicates == 1


def test_a_finished_message_that_comes_back_is_reopened_exactly() -> None:
    """The ack was in the socket buffer when the worker crashed: done, then delivered again."""
    books = ledger()
    (mid,) = publish(books, 1)
    key = books.delivered("w1", mid, False, False).key
    books.done("w1", key, 0)
    books.acked("w1", key)
    assert books.totals().done == 1
    back = books.delivered("w2", mid, True, False)
    assert back.duplicate_delivery
    assert places(books.totals()) == (0, 1, 0, 0, 0, 0)
    assert books.done("w2", back.key, 0) is True
    books.acked("w2", back.key)
    totals = books.totals()
    assert places(totals) == (0, 0, 0, 1, 0, 0) and totals.duplicates == 1
    assert [entry.kind for entry in books.recent()] == ["returned", "duplicate"]


def test_stale_ack_and_late_finish_from_a_worker_that_lost_the_message() -> None:
    books = ledger()
    (mid,) = publish(books, 1)
    old = books.delivered("w1", mid, False, False)
    new = books.delivered("w2", mid, True, False)  # broker took it from w1
    books.acked("w1", old.key)  # stale: ignored
    assert books.totals().unacked == 1 and books.held_by("w2") == 1
    books.done("w1", old.key, 0)  # w1 did the work anyway
    assert books.done("w2", new.key, 0) is True  # so this one is the duplicate
    books.acked("w2", new.key)
    assert books.totals().done == 1


def test_external_messages_are_followed_not_dropped() -> None:
    books = ledger()
    plain = books.delivered("w1", None, False, False)
    other = books.delivered("w1", "tq-otherrun.5", False, False)
    assert plain.external and other.external and plain.key != other.key
    assert books.unacked_count() == 2
    books.done("w1", plain.key, 0)
    books.acked("w1", plain.key)
    report = books.worker_died("w1")
    assert len(report.requeued) == 1
    totals = books.totals()
    assert (totals.published, totals.external_received, totals.external_done) == (0, 2, 1)
    assert totals.external_held == 0 and totals.balanced


def test_unsent_purge_and_broker_restart() -> None:
    books = ledger()
    seq, _mid = books.reserve()
    books.unsent(seq)
    assert (books.totals().published, books.totals().unsent) == (0, 1)
    persistent = publish(books, 2, persistent=True)
    publish(books, 2, persistent=False)
    held = books.delivered("w1", persistent[0], False, False)
    requeued, lost = books.broker_restarting(survives=True)
    assert [i.seq for i in requeued] == [held.seq]
    assert [i.seq for i in lost] == [4, 5]  # the transient ones
    assert books.held_by("w1") == 0
    assert [i.seq for i in books.purged()] == [2, 3]
    totals = books.totals()
    assert places(totals) == (0, 0, 0, 0, 2, 2) and totals.balanced
    gone = books.broker_restarting(survives=False)
    assert gone == ([], [])


def test_write_off_and_a_late_finish_of_a_written_off_message() -> None:
    books = ledger()
    (mid,) = publish(books, 1, persistent=False)
    key = books.delivered("w1", mid, False, auto_ack=False).key
    books.broker_restarting(survives=False)  # transient: the broker loses it
    assert books.totals().lost == 1
    books.done("w1", key, 0)  # but w1 had it and finished the work
    totals = books.totals()
    assert (totals.lost, totals.done) == (0, 1) and totals.balanced
    publish(books, 1)
    assert len(books.write_off_ready("gone")) == 1


def test_invariant_with_the_brokers_numbers() -> None:
    books = ledger()
    ids = publish(books, 3)
    key = books.delivered("w1", ids[0], False, False).key
    books.done("w1", key, 0)
    books.acked("w1", key)
    books.delivered("w1", ids[1], False, False)
    assert books.check().holds
    check = books.check(broker_ready=1, broker_unacked=1)
    assert check.holds and check.source == "broker"
    wrong = books.check(broker_ready=0, broker_unacked=1)
    assert not wrong.holds and wrong.difference == 1


def test_invariant_with_the_brokers_numbers_and_an_external_message_in_hand() -> None:
    """An auto-acked external delivery is held by a worker but not unacked in the broker."""
    books = ledger()
    (mid,) = publish(books, 1)
    books.delivered("w1", mid, False, auto_ack=False)
    books.delivered("w1", None, False, auto_ack=True)  # external, in hand
    books.delivered("w1", None, False, auto_ack=False)  # external, unacked
    totals = books.totals()
    assert (totals.external_held, totals.external_unacked) == (2, 1)
    assert books.unacked_count() == 2
    assert books.check(broker_ready=0, broker_unacked=books.unacked_count()).holds


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 40), st.integers(0, 2)), max_size=300))
def test_any_sequence_of_happenings_keeps_the_books_balanced(
    steps: list[tuple[int, int, int]],
) -> None:
    books = ledger()
    workers = ["w0", "w1", "w2"]
    keys: dict[str, list[int | tuple[str, int]]] = {w: [] for w in workers}
    ids: list[str] = []
    for action, pick, who in steps:
        worker = workers[who]
        if action == 0 or not ids:
            ids.append(books.reserve(persistent=pick % 2 == 0)[1])
        elif action == 1:
            delivery = books.delivered(worker, ids[pick % len(ids)], pick % 3 == 0, pick % 4 == 0)
            keys[worker].append(delivery.key)
        elif action == 2 and keys[worker]:
            books.done(worker, keys[worker][pick % len(keys[worker])], 0)
        elif action == 3 and keys[worker]:
            books.acked(worker, keys[worker][pick % len(keys[worker])])
        elif action == 4:
            books.worker_died(worker)
            keys[worker].clear()
        elif action == 5 and keys[worker]:
            books.requeued(worker, keys[worker][pick % len(keys[worker])], "nack")
        elif action == 6:
            books.broker_restarting(survives=pick % 2 == 0)
        totals = books.totals()
        assert totals.balanced, totals
        assert totals.completions == sum(c.done for c in books.all_worker_counts())
        held = sum(books.held_by(w) for w in workers)
        assert held == totals.unacked + totals.in_hand + totals.external_held


def test_memory_is_bounded_by_what_is_in_flight() -> None:
    """40k messages through the books, a few hundred in flight at a time: per-message records
    go away when a message finishes; a byte each remains."""
    books = ledger()
    rng = random.Random(7)
    in_flight: list[tuple[str, int | tuple[str, int]]] = []
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    for _ in range(40_000):
        _seq, mid = books.reserve()
        worker = rng.choice("abcd")
        in_flight.append((worker, books.delivered(worker, mid, False, auto_ack=False).key))
        if len(in_flight) > 300:
            worker, key = in_flight.pop(rng.randrange(len(in_flight)))
            books.done(worker, key, 0.0)
            books.acked(worker, key)
    grown = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    assert len(books._open) == 300 and books.totals().done == 40_000 - 300
    assert books.totals().balanced
    assert grown < 40_000 * 2 + 300 * 400, grown  # ~1 byte per message + the open records


def test_memory_of_finished_messages_is_one_byte_each() -> None:
    books = ledger()
    for _ in range(50_000):
        _seq, mid = books.reserve()
        key = books.delivered("w1", mid, False, auto_ack=True).key
        books.done("w1", key, 0.0)
    assert len(books._open) == 0
    assert len(books._final) == 50_001
    assert len(books.recent()) == 0  # nothing notable happened: no history kept


@pytest.mark.parametrize("message_id", [None, "", "tq-test", "tq-test.x", "tq-other.3", "3"])
def test_ids_that_are_not_ours(message_id: str | None) -> None:
    assert MessageIds("tq-test").parse(message_id) is None
