"""Cross-class suppression: one particle keeps one class; distinct neighbours and same-class picks stay."""
from __future__ import annotations

import pandas as pd
import pytest

from postprocess.class_suppression import suppress_across_classes
from particles import CZII_PARTICLES


def _picks(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["experiment", "particle_type", "x", "y", "z", "score"])


def test_weaker_other_class_on_the_same_spot_is_dropped():
    picks = _picks([("A", "ribosome", 1000.0, 1000.0, 500.0, 0.9),
                    ("A", "beta-galactosidase", 1030.0, 1000.0, 500.0, 0.6),  # 30 Å away: same particle
                    ("A", "beta-amylase", 990.0, 1000.0, 500.0, 0.3)])
    kept = suppress_across_classes(picks, particles=CZII_PARTICLES)
    assert kept["particle_type"].tolist() == ["ribosome"]


def test_neighbours_far_enough_apart_and_other_runs_are_kept():
    # ribosome (150 Å) and beta-galactosidase (90 Å): conflict below 0.5 x 240 = 120 Å
    picks = _picks([("A", "ribosome", 0.0, 0.0, 0.0, 0.9),
                    ("A", "beta-galactosidase", 125.0, 0.0, 0.0, 0.5),
                    ("B", "beta-galactosidase", 10.0, 0.0, 0.0, 0.5),  # another run: no conflict
                    ("A", "ribosome", -50.0, 0.0, 0.0, 0.4)])  # same class: per-class NMS's business
    assert suppress_across_classes(picks, particles=CZII_PARTICLES).index.tolist() == [0, 1, 2, 3]
    closer = picks.copy()
    closer.loc[1, "x"] = 115.0
    assert suppress_across_classes(closer, particles=CZII_PARTICLES).index.tolist() == [0, 2, 3]


def test_chain_is_greedy_by_score_and_fraction_zero_is_off():
    # a (0.9) suppresses b (0.8); b, suppressed, no longer suppresses c (0.7) though c is near b only
    picks = _picks([("A", "thyroglobulin", 0.0, 0.0, 0.0, 0.9),
                    ("A", "apo-ferritin", 90.0, 0.0, 0.0, 0.8),  # 90 < 0.5 x (130 + 60) = 95
                    ("A", "thyroglobulin", 180.0, 0.0, 0.0, 0.7)])
    assert suppress_across_classes(picks, particles=CZII_PARTICLES)["score"].tolist() == [0.9, 0.7]
    assert len(suppress_across_classes(picks, 0.0, particles=CZII_PARTICLES)) == 3
    with pytest.raises(ValueError, match=">= 0"):
        suppress_across_classes(picks, -1.0, particles=CZII_PARTICLES)
    with pytest.raises(ValueError, match="score"):
        suppress_across_classes(picks.drop(columns="score"), particles=CZII_PARTICLES)
