"""Per-class calibration out of fold (known answers): the isotonic map, which candidates count as true, and
scores of different channels made comparable."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from particles import CZII_PARTICLES
from postprocess.calibration import Calibration, candidate_outcomes, fit_calibration, platt


def test_platt_scaling_finds_the_true_rate() -> None:
    rng = np.random.default_rng(0)
    scores = rng.uniform(0.05, 0.95, 4000)
    outcomes = rng.random(4000) < scores ** 2 / (scores ** 2 + (1 - scores) ** 2)  # logit(p) = 2 logit(s)
    a, b = platt(scores, outcomes)
    assert a == pytest.approx(2.0, abs=0.2) and b == pytest.approx(0.0, abs=0.15)
    assert platt(np.array([0.3, 0.9, 0.5]), np.zeros(3))[0] == 0.0  # never a true pick: slope 0, not negative


def _candidates(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"experiment": run, "particle_type": name, "x": x, "y": 0.0, "z": 0.0, "score": s}
                         for run, name, x, s in rows])


def test_a_candidate_is_true_when_it_takes_a_particle_first() -> None:
    truth = _candidates([("A", "ribosome", 0.0, 1), ("A", "ribosome", 1000.0, 1)]).drop(columns="score")
    candidates = _candidates([("A", "ribosome", 10.0, 0.9), ("A", "ribosome", -20.0, 0.5),  # a duplicate
                              ("A", "ribosome", 1050.0, 0.4), ("A", "ribosome", 3000.0, 0.95),
                              ("A", "apo-ferritin", 0.0, 0.8), ("B", "ribosome", 0.0, 0.9)])
    assert candidate_outcomes(candidates, truth, particles=CZII_PARTICLES).tolist() == [
        True, False, True, False, False, False]


def test_calibrated_scores_are_comparable_across_channels_and_survive_json() -> None:
    rng = np.random.default_rng(0)
    rows, truth = [], []
    for i in range(200):  # ribosome's channel is sure of everything; apo-ferritin's scores are honest
        x = 1000.0 * i
        true_ribosome, true_apo = i % 4 == 0, i % 4 == 1
        truth += [("A", "ribosome", x, 1)] * true_ribosome + [("A", "apo-ferritin", x, 1)] * true_apo
        rows.append(("A", "ribosome", x, 0.9 + 0.1 * rng.random()))
        rows.append(("A", "apo-ferritin", x, 0.8 if true_apo else 0.2))
    candidates, truth = _candidates(rows), _candidates(truth).drop(columns="score")
    calibration = fit_calibration(candidates, truth, particles=CZII_PARTICLES)
    calibrated = calibration.apply(candidates)
    ribosome = calibrated[calibrated["particle_type"] == "ribosome"]["score"]
    apo = calibrated[calibrated["particle_type"] == "apo-ferritin"]
    assert ribosome.between(0.1, 0.45).all()  # a raw 0.9+ that is right a quarter of the time
    assert apo.loc[apo["raw_score"] == 0.8, "score"].min() > 0.9 > 0.1 > apo.loc[apo["raw_score"] == 0.2, "score"].max()
    again = Calibration.from_json(calibration.to_json(), "t.json", particles=CZII_PARTICLES)
    pd.testing.assert_frame_equal(again.apply(candidates), calibrated)
    broken = {**calibration.to_json(), "ribosome": {"slope": -1.0, "intercept": 0.0}}
    with pytest.raises(ValueError, match="t.json: calibration of 'ribosome' needs a finite slope >= 0"):
        Calibration.from_json(broken, "t.json", particles=CZII_PARTICLES)


def cands(rows):
    return pd.DataFrame(rows, columns=["experiment", "particle_type", "x", "y", "z", "score"])


def test_the_strongest_rival_is_another_class_on_the_same_spot_of_the_same_run() -> None:
    from postprocess.competition import strongest_rival

    table = cands([("a", "ribosome", 0, 0, 0, 0.3), ("a", "apo-ferritin", 40, 0, 0, 0.8),
                   ("a", "apo-ferritin", 60, 0, 0, 0.6), ("a", "ribosome", 500, 0, 0, 0.9),
                   ("b", "apo-ferritin", 0, 0, 0, 0.99)])
    radii = {p.name: p.radius for p in CZII_PARTICLES.particles}  # ribosome 150, apo-ferritin 60 Å
    rival = strongest_rival(table, radii, 0.5)  # reach 0.5 * 210 = 105 Å
    assert rival.tolist() == [0.8, 0.3, 0.3, 0.0, 0.0]  # same class and other runs never compete


def test_a_competing_calibration_learns_that_a_ghost_class_loses_to_its_rival_and_drops_nothing() -> None:
    from postprocess.class_suppression import decide_classes

    rng = np.random.default_rng(0)
    rows, truth = [], []
    for i in range(60):  # thyroglobulins, each also seen in the beta-galactosidase channel (a ghost)
        x = 400.0 * i
        truth.append(("r", "thyroglobulin", x, 0.0, 0.0))
        rows.append(("r", "thyroglobulin", x, 0.0, 0.0, rng.uniform(0.6, 0.9)))
        rows.append(("r", "beta-galactosidase", x + 5, 0.0, 0.0, rng.uniform(0.4, 0.7)))
    for i in range(60):  # real beta-galactosidases, alone, scored like the ghosts
        x = 400.0 * i
        truth.append(("r", "beta-galactosidase", x, 1000.0, 0.0))
        rows.append(("r", "beta-galactosidase", x, 1000.0, 0.0, rng.uniform(0.4, 0.7)))
    table = cands(rows)
    truth = pd.DataFrame(truth, columns=["experiment", "particle_type", "x", "y", "z"])
    calibration = fit_calibration(table, truth, particles=CZII_PARTICLES, competing=True)
    assert calibration.competition.weights["beta-galactosidase"][2] < -0.5  # a strong rival: a ghost
    decided = decide_classes(table, 0.0, calibration, particles=CZII_PARTICLES)
    assert len(decided) == len(table)  # nothing dropped
    bgal = decided[decided["particle_type"] == "beta-galactosidase"]
    ghosts, real = bgal[bgal["y"] == 0.0], bgal[bgal["y"] == 1000.0]
    assert ghosts["score"].max() < real["score"].min()
    plain = fit_calibration(table, truth, particles=CZII_PARTICLES)  # Platt alone cannot tell them apart
    assert plain.competition is None
    again = Calibration.from_json(calibration.to_json(), "test", particles=CZII_PARTICLES)
    pd.testing.assert_frame_equal(again.apply(table), calibration.apply(table))
    broken = calibration.to_json()
    broken["competition"]["weights"]["ribosome"]["rival"] = 1.0
    with pytest.raises(ValueError, match="rival <= 0"):
        Calibration.from_json(broken, "thresholds file t.json", particles=CZII_PARTICLES)
