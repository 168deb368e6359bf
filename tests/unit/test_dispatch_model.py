"""The dispatch model that gives scenarios their expected outcomes."""

from __future__ import annotations

import pytest

from tui_queue.engine.dispatch_model import predict_dispatch


def test_tutorial_round_robin() -> None:
    prediction = predict_dispatch([1, 2, 3, 4, 5], workers=2, prefetch=0)
    assert prediction.assignments == ((0, 2, 4), (1, 3))
    assert prediction.finish == (9, 6)


def test_heavy_light_round_robin_piles_heavy_on_one_worker() -> None:
    durations = [4, 1] * 4
    slow = predict_dispatch(durations, workers=2, prefetch=0)
    fair = predict_dispatch(durations, workers=2, prefetch=1)
    assert slow.assignments[0] == (0, 2, 4, 6) and slow.makespan == 16
    assert fair.makespan == 10
    assert sorted(fair.assignments[0] + fair.assignments[1]) == list(range(8))


def test_prefetch_n_between_the_two() -> None:
    durations = [4, 1] * 6
    makespans = [predict_dispatch(durations, 2, p).makespan for p in (0, 3, 1)]
    assert makespans[0] >= makespans[1] >= makespans[2]


def test_one_worker_does_everything_in_order() -> None:
    prediction = predict_dispatch([1, 1, 1], workers=1, prefetch=1)
    assert prediction.assignments == ((0, 1, 2),) and prediction.makespan == 3


def test_more_workers_than_messages() -> None:
    prediction = predict_dispatch([2], workers=3, prefetch=1)
    assert prediction.assignments == ((0,), (), ()) and prediction.makespan == 2
    assert predict_dispatch([], workers=2, prefetch=0).makespan == 0


def test_needs_a_worker() -> None:
    with pytest.raises(ValueError):
        predict_dispatch([1], workers=0, prefetch=1)
