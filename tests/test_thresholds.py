"""Threshold fitting recovers hand-computed optima and ties; JSON round trip and clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from particles import CZII_PARTICLES, PARTICLE_NAMES
from postprocess.metric import score_picks
from postprocess.thresholds import (apply_thresholds, fit_thresholds, load_thresholds,
                                    precision_recall_curve, save_thresholds)


def table(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    """Rows (run, class, x, score) at y = z = 100 Å."""
    return pd.DataFrame({"experiment": [r[0] for r in rows], "particle_type": [r[1] for r in rows],
                         "x": [r[2] for r in rows], "y": 100.0, "z": 100.0, "score": [r[3] for r in rows]})


RIB = "ribosome"  # hit radius 75 Å
TRUTH = table([("A", RIB, 0.0, 1), ("A", RIB, 1000.0, 1), ("B", RIB, 0.0, 1), ("B", RIB, 3000.0,
                                                                               1)]).drop(columns="score")
CANDS = table([("A", RIB, 10.0, 0.9), ("A", RIB, 5000.0, 0.8), ("A", RIB, 6000.0, 0.7), ("A", RIB, 990.0, 0.6),
               ("B", RIB, 5000.0, 0.5), ("B", RIB, 1000.0, 0.4), ("B", RIB, 3050.0, 0.3),  # 3050: within 75 Å
               ("B", RIB, 0.0, 0.05)] + [("B", RIB, 8000.0 + 200 * i, 0.1) for i in range(30)])


def f4(tp: int, n_ref: int, kept: int) -> float:
    return 17 * tp / (16 * n_ref + kept)


def test_curve_matches_hand_counts() -> None:
    curve = precision_recall_curve(CANDS, TRUTH, RIB, particles=CZII_PARTICLES).set_index("threshold")
    assert list(curve.index) == [0.05, 0.1, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert curve.loc[0.9, ["tp", "fp", "fn"]].tolist() == [1, 0, 3]
    assert curve.loc[0.6, ["tp", "fp", "fn"]].tolist() == [2, 2, 2]
    assert curve.loc[0.3, ["tp", "fp", "fn"]].tolist() == [3, 4, 1]
    assert curve.loc[0.05, ["tp", "fp", "fn"]].tolist() == [4, 34, 0]
    assert curve.loc[0.3, "f4"] == pytest.approx(f4(3, 4, 7))
    assert curve.loc[0.05, "recall"] == 1.0


def test_fit_recovers_hand_optimum_and_fallback() -> None:
    fitted = fit_thresholds(CANDS, TRUTH, fallback=0.42, particles=CZII_PARTICLES)
    # F4 by hand: t=0.9 -> 17/65, 0.6 -> 34/68, 0.3 -> 51/71 (best), 0.1 -> 51/101, 0.05 -> 68/102
    assert fitted[RIB] == 0.3
    assert all(fitted[n] == 0.42 for n in PARTICLE_NAMES if n != RIB)  # no references there
    report = score_picks(apply_thresholds(CANDS, fitted, particles=CZII_PARTICLES), TRUTH, particles=CZII_PARTICLES)
    assert report.table.loc[RIB, "tp"] == 3 and report.table.loc[RIB, "fp"] == 4
    assert report.table.loc[RIB, "f4"] == pytest.approx(f4(3, 4, 7))


def test_tolerance_takes_the_lowest_threshold_on_the_plateau() -> None:
    # F4 by hand: 0.3 -> 51/71 = 0.718 (best), 0.05 -> 68/102 = 0.667, 0.6 -> 0.5
    assert fit_thresholds(CANDS, TRUTH, tolerance=0.05,
                          particles=CZII_PARTICLES)[RIB] == 0.3  # 0.667 is 0.052 below: not on it
    assert fit_thresholds(CANDS, TRUTH, tolerance=0.06, particles=CZII_PARTICLES)[RIB] == 0.05
    assert fit_thresholds(CANDS, TRUTH, tolerance=0.0, particles=CZII_PARTICLES)[RIB] == 0.3


def test_ties_pick_the_lower_threshold() -> None:
    truth = table([("A", RIB, 0.0, 1), ("A", RIB, 1000.0, 1)]).drop(columns="score")
    # t=0.9: TP 1, kept 1 -> 17/33; t=0.4: TP 2, kept 34 -> 34/66 = 17/33 (tie); t=0.5: 17/65
    cands = table([("A", RIB, 0.0, 0.9), ("A", RIB, 1000.0, 0.4)] + [("A", RIB, 5000.0 + 200 * i,
                                                                      0.5) for i in range(32)])
    assert fit_thresholds(cands, truth, particles=CZII_PARTICLES)[RIB] == 0.4


def test_apply_thresholds_filters_per_class() -> None:
    cands = table([("A", RIB, 0.0, 0.5), ("A", RIB, 10.0, 0.2), ("A", "apo-ferritin", 0.0, 0.3)])
    limits = {n: 0.25 for n in PARTICLE_NAMES} | {RIB: 0.4}
    kept = apply_thresholds(cands, limits, particles=CZII_PARTICLES)
    assert sorted(zip(kept["particle_type"], kept["score"])) == [("apo-ferritin", 0.3), (RIB, 0.5)]
    with pytest.raises(ValueError, match="score"):
        apply_thresholds(cands.drop(columns="score"), limits, particles=CZII_PARTICLES)


def test_json_round_trip_and_errors(tmp_path: Path) -> None:
    limits = {n: 0.1 * (i + 1) for i, n in enumerate(PARTICLE_NAMES)}
    record = {"tta": ["identity", "flip_z"], "kernel_fraction": 0.5}
    path = save_thresholds(limits, tmp_path / "t.json", fitted_with=record, particles=CZII_PARTICLES)
    assert load_thresholds(path, particles=CZII_PARTICLES) == (limits, record)
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(limits))  # hand-written: thresholds only, nothing known of their fitting
    assert load_thresholds(plain, particles=CZII_PARTICLES) == (limits, None)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json.*malformed or truncated JSON"):
        load_thresholds(bad, particles=CZII_PARTICLES)
    bad.write_text(json.dumps(limits | {"bogus": 0.2}))
    with pytest.raises(ValueError, match="unknown particle classes \\['bogus'\\]"):
        load_thresholds(bad, particles=CZII_PARTICLES)
    bad.write_text(json.dumps({n: v for n, v in limits.items() if n != RIB}))
    with pytest.raises(ValueError, match="missing.*ribosome"):
        load_thresholds(bad, particles=CZII_PARTICLES)
    for value in ("high", -0.1, 1.5, float("nan")):  # a negative threshold would keep every candidate
        bad.write_text(json.dumps(limits | {RIB: value}))
        with pytest.raises(ValueError, match=r"threshold of ribosome must be a number in \[0, 1\]"):
            load_thresholds(bad, particles=CZII_PARTICLES)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_thresholds(tmp_path / "nope.json", particles=CZII_PARTICLES)


def test_count_matched_thresholds_keep_the_oof_pick_rate() -> None:
    """OOF kept 2 ribosome picks per run over 2 runs; on 1 test run the matched threshold keeps the top 2,
    whatever the test scores' scale (an ensemble scores lower than its single models)."""
    from benchmarks.bench_oof_cv import count_matched

    thresholds = {n: 0.5 for n in PARTICLE_NAMES}
    oof = table([("A", RIB, 0.0, 0.9), ("A", RIB, 1.0, 0.6), ("B", RIB, 0.0, 0.7), ("B", RIB, 1.0, 0.55),
                 ("B", RIB, 2.0, 0.2)])
    test = table([("T", RIB, 0.0, 0.30), ("T", RIB, 1.0, 0.10), ("T", RIB, 2.0, 0.25), ("T", RIB, 3.0, 0.05)])
    matched = count_matched(oof, thresholds, n_oof=2, test=test, n_test=1)
    assert matched[RIB] == 0.25
    assert len(apply_thresholds(test, matched, particles=CZII_PARTICLES)) == 2
    test = pd.concat([test, table([("T", "apo-ferritin", 5.0, 0.8)])], ignore_index=True)
    kept = apply_thresholds(test, count_matched(oof, thresholds, n_oof=2, test=test, n_test=1),
                            particles=CZII_PARTICLES)
    assert "apo-ferritin" not in set(kept["particle_type"])  # none kept out of fold: none kept on test


def test_one_se_rule_lowers_a_threshold_resting_on_few_particles() -> None:
    """Four references over two runs: their optimum is noise, and one standard error sqrt(F (1 - F) / 4) lets
    the threshold drop to the lowest score whose F4 is within it."""
    plateau = fit_thresholds(CANDS, TRUTH, particles=CZII_PARTICLES)[RIB]
    wide = fit_thresholds(CANDS, TRUTH, rule="one-se", particles=CZII_PARTICLES)[RIB]
    curve = precision_recall_curve(CANDS, TRUTH, RIB, particles=CZII_PARTICLES).set_index("threshold")["f4"]
    best = curve.max()
    margin = (best * (1 - best) / 4) ** 0.5
    expected = curve[curve >= best - margin - 1e-12].index.min()
    assert wide == pytest.approx(expected) and wide < plateau
    with pytest.raises(ValueError, match="unknown threshold rule 'loose'"):
        fit_thresholds(CANDS, TRUTH, rule="loose", particles=CZII_PARTICLES)


def test_one_se_rule_keeps_the_tolerance_as_a_floor() -> None:
    """Where the best F4 is 1 its standard error is 0: the threshold is the plateau one."""
    exact = table([("A", RIB, 0.0, 0.9), ("A", RIB, 1000.0, 0.8), ("A", RIB, 3000.0, 0.3)])
    truth = table([("A", RIB, 0.0, 1), ("A", RIB, 1000.0, 1)]).drop(columns="score")
    assert fit_thresholds(exact, truth, rule="one-se", particles=CZII_PARTICLES)[RIB] == 0.8
    assert fit_thresholds(exact, truth, particles=CZII_PARTICLES)[RIB] == 0.8


def test_the_cross_fitted_oof_cv_never_reuses_the_scored_run() -> None:
    """Two OOF runs whose best thresholds disagree: in-sample, each run is scored at thresholds that saw it;
    cross-fitted, run A is scored at the threshold fitted on run B alone, and the reverse."""
    from config.experiment import InferenceSettings
    from inference.oof import OOFPredictions, cross_fitted_picks, fit_postprocess
    from inference.predict import EnsembleSettings
    from postprocess.metric import score_picks

    settings = EnsembleSettings("sigmoid", 1, "zscore", InferenceSettings(threshold_tolerance=0.0),
                                particles=CZII_PARTICLES)
    # run A: its ribosome scores 0.9 (true) and 0.5 (false); run B: 0.4 (true) and 0.8 (false)
    candidates = table([("A", RIB, 0.0, 0.9), ("A", RIB, 3000.0, 0.5), ("B", RIB, 0.0, 0.4), ("B", RIB, 3000.0, 0.8)])
    truth = table([("A", RIB, 0.0, 1), ("B", RIB, 0.0, 1)]).drop(columns="score")
    oof = OOFPredictions(candidates, truth, ["A", "B"], {"A": 1, "B": 1}, raw=candidates)
    fit_b = fit_postprocess(candidates[candidates["experiment"] == "B"], truth[truth["experiment"] == "B"], settings)
    assert fit_b.thresholds[RIB] == 0.4  # run B alone keeps its true 0.4 pick
    picks = cross_fitted_picks(oof, settings)
    kept = sorted(zip(picks["experiment"], picks["score"]))
    assert kept == [("A", 0.5), ("A", 0.9)]  # A at B's 0.4 keeps both; B at A's 0.9 keeps nothing
    report = score_picks(picks, truth, runs=["A", "B"], particles=CZII_PARTICLES)
    assert report.table.loc[RIB, ["tp", "fp", "fn"]].tolist() == [1, 1, 1]
    in_sample = fit_postprocess(candidates, truth, settings).thresholds[RIB]
    assert in_sample == 0.4  # fitted on both runs, the in-sample picks find both particles


def test_cross_fitting_leaves_out_every_prediction_of_the_scored_tomogram() -> None:
    """Single-model OOF predictions: tomogram A predicted by two models is two runs (A@1, A@2). Scoring A@1,
    the fit must not see A@2 (the same particles): fitted on B alone the threshold is 0.8 and A@1 keeps its 0.9
    pick only; a fit that saw A@2's true 0.3 would cut far lower and keep A@1's false 0.5 too."""
    from config.experiment import InferenceSettings
    from inference.oof import OOFPredictions, cross_fitted_picks
    from inference.predict import EnsembleSettings

    settings = EnsembleSettings("sigmoid", 1, "zscore", InferenceSettings(threshold_tolerance=0.0),
                                particles=CZII_PARTICLES)
    candidates = table([("A@1", RIB, 0.0, 0.9), ("A@1", RIB, 3000.0, 0.5), ("A@2", RIB, 0.0, 0.3),
                        ("A@2", RIB, 3000.0, 0.2), ("B@1", RIB, 0.0, 0.8), ("B@1", RIB, 3000.0, 0.7)])
    truth = table([("A@1", RIB, 0.0, 1), ("A@2", RIB, 0.0, 1), ("B@1", RIB, 0.0, 1)]).drop(columns="score")
    runs = ["A@1", "A@2", "B@1"]
    grouped = OOFPredictions(candidates, truth, runs, dict.fromkeys(runs, 1), raw=candidates,
                             tomograms={"A@1": "A", "A@2": "A", "B@1": "B"})
    assert grouped.tomogram_runs() == {"A": ["A@1", "A@2"], "B": ["B@1"]}
    kept = cross_fitted_picks(grouped, settings)
    assert sorted(kept.loc[kept["experiment"] == "A@1", "score"]) == [0.9]
    ungrouped = cross_fitted_picks(OOFPredictions(candidates, truth, runs, dict.fromkeys(runs, 1), raw=candidates),
                                   settings)
    assert sorted(ungrouped.loc[ungrouped["experiment"] == "A@1", "score"]) == [0.5, 0.9]  # what it guards against


def test_cross_fitting_only_the_named_choices() -> None:
    """The two runs of the cross-fitting test: refitting no choice on the other runs is the in-sample OOF CV
    (both runs at the threshold fitted on both, 0.4); refitting the thresholds is the full cross-fitted one
    (this setting fits nothing else); a choice not refitted needs a fit to take it from, and unknown choices
    are refused."""
    from config.experiment import InferenceSettings
    from inference.oof import OOFPredictions, cross_fitted_picks, fit_postprocess
    from inference.predict import EnsembleSettings

    settings = EnsembleSettings("sigmoid", 1, "zscore", InferenceSettings(threshold_tolerance=0.0),
                                particles=CZII_PARTICLES)
    candidates = table([("A", RIB, 0.0, 0.9), ("A", RIB, 3000.0, 0.5), ("B", RIB, 0.0, 0.4), ("B", RIB, 3000.0, 0.8)])
    truth = table([("A", RIB, 0.0, 1), ("B", RIB, 0.0, 1)]).drop(columns="score")
    oof = OOFPredictions(candidates, truth, ["A", "B"], {"A": 1, "B": 1}, raw=candidates)
    in_sample = cross_fitted_picks(oof, settings, refit=())
    assert sorted(zip(in_sample["experiment"], in_sample["score"])) == [("A", 0.5), ("A", 0.9), ("B", 0.4),
                                                                        ("B", 0.8)]
    full = cross_fitted_picks(oof, settings)
    pd.testing.assert_frame_equal(cross_fitted_picks(oof, settings, refit=("thresholds",)), full)
    fixed = fit_postprocess(candidates, truth, settings)
    assert fit_postprocess(candidates[candidates["experiment"] == "B"], truth, settings, fixed, ()) == fixed
    with pytest.raises(ValueError, match="needs a fixed fit"):
        fit_postprocess(candidates, truth, settings, refit=("thresholds",))
    with pytest.raises(ValueError, match="refit names choices"):
        fit_postprocess(candidates, truth, settings, fixed, refit=("plateau",))
