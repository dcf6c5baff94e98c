"""Cross-class suppression: one particle keeps one class; distinct neighbours and same-class picks stay."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from postprocess.class_suppression import select_picks, suppress_across_classes
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


def test_calibrated_scores_decide_the_class_of_a_location() -> None:
    """Two channels fire on one particle: the raw scores favour the ribosome channel, which is sure of
    everything; calibrated, the apo-ferritin channel's 0.6 means more than the ribosome channel's 0.9."""
    from postprocess.calibration import Calibration

    candidates = pd.DataFrame({"experiment": ["A", "A", "A"], "particle_type": ["ribosome", "apo-ferritin", "ribosome"],
                               "x": [0.0, 20.0, 5000.0], "y": 0.0, "z": 0.0, "score": [0.9, 0.6, 0.95]})
    flat = {n: (1.0, 0.0) for n in CZII_PARTICLES.names}  # identity: sigmoid(logit(s))
    calibration = Calibration({**flat, "ribosome": (0.0, -1.0)})  # every ribosome score means p = 0.27
    thresholds = {n: 0.1 for n in CZII_PARTICLES.names}
    picks = select_picks(candidates, thresholds, 0.0, particles=CZII_PARTICLES, calibration=calibration)
    assert sorted(zip(picks["particle_type"], picks["x"])) == [("apo-ferritin", 20.0), ("ribosome", 5000.0)]
    assert picks.loc[picks["particle_type"] == "apo-ferritin", "score"].iloc[0] == pytest.approx(0.6)
    raw = select_picks(candidates, thresholds, 0.5, particles=CZII_PARTICLES)  # raw scores: the ribosome wins
    assert sorted(zip(raw["particle_type"], raw["x"])) == [("ribosome", 0.0), ("ribosome", 5000.0)]


def test_after_a_calibrated_decision_no_two_scored_picks_share_a_particle() -> None:
    from postprocess.calibration import Calibration

    rng = np.random.default_rng(0)
    names = np.array(CZII_PARTICLES.names)[rng.integers(0, 6, 400)]
    candidates = pd.DataFrame({"experiment": "A", "particle_type": names, "x": rng.uniform(0, 4000, 400),
                               "y": rng.uniform(0, 4000, 400), "z": rng.uniform(0, 800, 400),
                               "score": rng.uniform(0.05, 1.0, 400)})
    calibration = Calibration({n: (rng.uniform(0.5, 2.0), rng.uniform(-1, 1)) for n in CZII_PARTICLES.names})
    picks = select_picks(candidates, {n: 0.2 for n in CZII_PARTICLES.names}, 0.5, particles=CZII_PARTICLES,
                         calibration=calibration)
    scored = picks[picks["particle_type"] != "beta-amylase"]  # weight 0: never suppresses (nor is scored)
    xyz, kinds = scored[["x", "y", "z"]].to_numpy(), scored["particle_type"].to_numpy()
    radii = np.array([CZII_PARTICLES.get(n).radius for n in kinds])
    clash = ((np.linalg.norm(xyz[:, None] - xyz[None], axis=-1) < 0.5 * (radii[:, None] + radii[None]))
             & (kinds[:, None] != kinds[None]))
    assert len(scored) > 50 and not clash.any()
