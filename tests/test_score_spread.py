"""The score of k-run subsets: pooled counts equal the metric on the subset, known spreads."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from particles import CZII_PARTICLES, PARTICLE_NAMES
from postprocess.metric import score_picks
from postprocess.score_spread import per_run_counts, score_spread, subset_scores

RUNS = ["TS_A", "TS_B", "TS_C", "TS_D"]


def truth_and_picks() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every class once per run; the picks find everything in TS_A and TS_B, nothing in TS_C, and add a false
    ribosome in TS_D."""
    truth = pd.DataFrame([(run, name, 1000.0 + 1000.0 * i, 500.0 * r + 1000.0, 1000.0)
                          for r, run in enumerate(RUNS) for i, name in enumerate(PARTICLE_NAMES)],
                         columns=["experiment", "particle_type", "x", "y", "z"])
    picks = truth[truth["experiment"].isin(["TS_A", "TS_B", "TS_D"])]
    false = pd.DataFrame([("TS_D", "ribosome", 9000.0, 9000.0, 9000.0)], columns=truth.columns)
    return truth, pd.concat([picks, false], ignore_index=True)


def test_subset_scores_equal_the_metric_on_each_subset() -> None:
    truth, picks = truth_and_picks()
    counts = per_run_counts(picks, truth, RUNS, particles=CZII_PARTICLES)
    assert counts.shape == (4, 6, 3)
    assert counts[2, :, 2].tolist() == [1] * 6 and counts[2, :, 0].sum() == 0  # TS_C: all missed
    weights = np.array([p.weight for p in CZII_PARTICLES.particles])
    scores = subset_scores(counts, weights, size=2, draws=400, seed=1)
    expected = {score_picks(picks[picks["experiment"].isin(pair)], truth[truth["experiment"].isin(pair)],
                            runs=list(pair), particles=CZII_PARTICLES).score
                for pair in itertools.combinations(RUNS, 2)}
    assert set(np.round(scores, 12)) == set(np.round(sorted(expected), 12))
    whole = subset_scores(counts, weights, size=4, draws=3)
    assert whole == pytest.approx([score_picks(picks, truth, runs=RUNS, particles=CZII_PARTICLES).score] * 3)


def test_spread_is_zero_when_every_run_scores_alike_and_wide_when_they_differ() -> None:
    truth, _ = truth_and_picks()
    same = score_spread(truth, truth, RUNS, 2, particles=CZII_PARTICLES, draws=200)
    assert same.mean == 1.0 and same.sd == 0.0 and same.low == same.high == 1.0
    _, picks = truth_and_picks()
    spread = score_spread(picks, truth, RUNS, 2, particles=CZII_PARTICLES, draws=500)
    assert spread.sd > 0.1 and spread.low < spread.mean < spread.high


def test_subset_larger_than_the_runs_is_an_error() -> None:
    with pytest.raises(ValueError, match="5 runs out of 4"):
        subset_scores(np.zeros((4, 6, 3)), np.ones(6), size=5, draws=10)
