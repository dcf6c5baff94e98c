"""The OOF CV carried to the ensemble's size (a - b/m), and bench_ensemble_size's ring windows of pair models."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from benchmarks.bench_ensemble_size import ring_order, windows
from postprocess.ensemble_size import carried_score


def test_ring_order_puts_pairs_sharing_a_fold_side_by_side() -> None:
    runs = [SimpleNamespace(fold=f) for f in ("3+4", "0+1", "6+0", "1+2", "2+3", "5+6", "4+5")]
    order = ring_order(runs)  # type: ignore[arg-type]
    assert [runs[i].fold for i in order] == ["0+1", "1+2", "2+3", "3+4", "4+5", "5+6", "6+0"]


def test_windows_wrap_round_the_ring() -> None:
    order = [2, 0, 1]
    assert windows(order, 1) == [[2], [0], [1]]
    assert windows(order, 2) == [[2, 0], [0, 1], [1, 2]]
    assert windows(order, 3) == [[2, 0, 1]]
    assert windows(order, 5) == [[2, 0, 1]]


def test_carried_score_follows_a_minus_b_over_m() -> None:
    a, b = 0.9, 0.1
    score = lambda m: a - b / m  # noqa: E731
    assert carried_score(score(1), score(2), 2, 7) == pytest.approx(score(7))
    assert carried_score(score(1), score(3), 3, 7) == pytest.approx(score(7))  # three models per OOF run
    assert carried_score(score(1), score(2), 2, 2) == pytest.approx(score(2))
    assert carried_score(score(1), score(2), 2, 1) == pytest.approx(score(1))
    assert carried_score(0.8, 0.8, 2, 7) == pytest.approx(0.8)  # no gain from a second model: none from five more
    assert carried_score(0.8, 0.7, 2, 7) < 0.7  # a worse pair is carried down, not clipped


def test_carried_score_needs_an_ensemble_to_carry_from() -> None:
    with pytest.raises(ValueError, match="2\\+ members"):
        carried_score(0.8, 0.8, 1, 7)
