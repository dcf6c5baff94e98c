"""The official metric on cases with known answers, its brute-force twin, the loaders and the CLI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from particles import CZII_PARTICLES, PARTICLES, PARTICLE_NAMES, particle
from postprocess.metric import (f_beta, load_ground_truth, read_submission, reference_best_scores,
                                score_picks)
from dataio.pick_writers import write_copick_picks, write_submission

REPO = Path(__file__).resolve().parents[1]


def picks(rows: list[tuple[str, str, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["experiment", "particle_type", "x", "y", "z"])


def one_of_each(run: str = "TS_A", origin: float = 1000.0) -> pd.DataFrame:
    """One particle per class, far apart."""
    return picks([(run, name, origin + 1000.0 * i, origin, origin) for i, name in enumerate(PARTICLE_NAMES)])


def test_perfect_and_empty() -> None:
    truth = pd.concat([one_of_each("TS_A"), one_of_each("TS_B", 2000.0)], ignore_index=True)
    perfect = score_picks(truth, truth, particles=CZII_PARTICLES)
    assert perfect.score == 1.0
    assert list(perfect.table.index) == list(PARTICLE_NAMES)
    assert list(perfect.table.columns) == ["precision", "recall", "f4", "tp", "fp", "fn", "weight"]
    assert perfect.table["tp"].tolist() == [2] * 6 and perfect.table["fp"].sum() == 0
    assert perfect.table["weight"].tolist() == [1.0, 0.0, 2.0, 1.0, 2.0, 1.0]
    empty = score_picks(truth.iloc[:0], truth, particles=CZII_PARTICLES)
    assert empty.score == 0.0 and empty.table["fn"].tolist() == [2] * 6


def test_duplicate_is_exactly_one_false_positive() -> None:
    truth = one_of_each()
    duplicate = truth[truth["particle_type"] == "ribosome"].assign(x=lambda t: t["x"] + 10.0)
    report = score_picks(pd.concat([truth, duplicate]), truth, particles=CZII_PARTICLES)
    assert report.table.loc["ribosome", ["tp", "fp", "fn"]].tolist() == [1, 1, 0]
    assert report.table["fp"].sum() == 1


@pytest.mark.parametrize("fraction, hit", [(0.0, True), (0.49, True), (0.5, True), (0.51, False)])
def test_hit_radius(fraction: float, hit: bool) -> None:
    r = particle("ribosome").radius
    direction = np.array([1.0, 2.0, 2.0]) / 3.0  # unit vector, so the distance is fraction * r
    x, y, z = np.array([1000.0, 1000.0, 1000.0]) + direction * fraction * r
    report = score_picks(picks([("TS_A", "ribosome", x, y, z)]), picks([("TS_A", "ribosome", 1000, 1000, 1000)]),
                         particles=CZII_PARTICLES)
    assert report.table.loc["ribosome", "tp"] == int(hit)
    assert report.table.loc["ribosome", "fp"] == int(not hit)


def test_beta_amylase_does_not_count() -> None:
    truth = one_of_each()
    wrong = truth.copy()
    amylase = wrong["particle_type"] == "beta-amylase"
    wrong.loc[amylase, "x"] += 3000.0  # a miss and a false positive for beta-amylase only
    report = score_picks(pd.concat([wrong, wrong[amylase]]), truth, particles=CZII_PARTICLES)
    assert report.table.loc["beta-amylase", ["tp", "fp", "fn"]].tolist() == [0, 2, 1]
    assert report.score == 1.0


def test_hand_computed_mixed_case() -> None:
    refs = [("TS_A", "apo-ferritin", 1000.0 + 500 * i, 1000.0, 1000.0) for i in range(5)]
    preds = [("TS_A", "apo-ferritin", 1000.0 + 500 * i + 5.0, 1000.0, 1000.0) for i in range(3)]
    preds.append(("TS_A", "apo-ferritin", 5000.0, 5000.0, 500.0))  # nowhere near a reference
    others = one_of_each("TS_A", 200.0)
    others = others[others["particle_type"] != "apo-ferritin"]
    report = score_picks(pd.concat([picks(preds), others]), pd.concat([picks(refs), others]), particles=CZII_PARTICLES)
    tp, fp, fn = 3, 1, 2
    p, r = tp / (tp + fp), tp / (tp + fn)
    f4 = (1 + 16) * p * r / (16 * p + r)
    row = report.table.loc["apo-ferritin"]
    assert (row["tp"], row["fp"], row["fn"]) == (tp, fp, fn)
    assert row["precision"] == pytest.approx(p) and row["recall"] == pytest.approx(r)
    assert row["f4"] == pytest.approx(f4)
    assert report.score == pytest.approx((1 * f4 + 2 + 1 + 2 + 1) / 7)


def test_experiments_are_kept_apart() -> None:
    truth = picks([("TS_A", "ribosome", 1000, 1000, 1000), ("TS_B", "thyroglobulin", 50, 50, 50)])
    report = score_picks(picks([("TS_B", "ribosome", 1000, 1000, 1000)]), truth, particles=CZII_PARTICLES)
    assert report.table.loc["ribosome", ["tp", "fp", "fn"]].tolist() == [0, 1, 1]


def test_f_beta_undefined_is_zero() -> None:
    p, r, f = f_beta(np.array([0, 0, 2]), np.array([0, 3, 0]), np.array([0, 0, 0]))
    np.testing.assert_array_equal(f, [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(p, [0.0, 0.0, 1.0])


def test_errors() -> None:
    truth = one_of_each()
    with pytest.raises(ValueError, match=r"predictions: unknown particle types \['proteasome'\]"):
        score_picks(picks([("TS_A", "proteasome", 0, 0, 0)]), truth, particles=CZII_PARTICLES)
    with pytest.raises(ValueError, match=r"ground truth: unknown particle types \['proteasome'\]"):
        score_picks(truth, picks([("TS_A", "proteasome", 0, 0, 0)]), particles=CZII_PARTICLES)
    with pytest.raises(ValueError, match=r"experiments not in the ground truth: \['TS_Z'\]"):
        score_picks(picks([("TS_Z", "ribosome", 0, 0, 0)]), truth, particles=CZII_PARTICLES)
    # an experiment the truth covers but with no particles is fine
    report = score_picks(picks([("TS_Z", "ribosome", 0, 0, 0)]), truth, runs=["TS_A", "TS_Z"], particles=CZII_PARTICLES)
    assert report.table.loc["ribosome", "fp"] == 1


def brute_force_counts(pred: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """Per class [tp, fp, fn] by looping over experiments, references and predictions."""
    counts = np.zeros((6, 3), dtype=int)
    for c, p in enumerate(PARTICLES):
        for run in set(pred["experiment"]) | set(truth["experiment"]):
            a = pred[(pred["experiment"] == run) & (pred["particle_type"] == p.name)][["x", "y", "z"]].to_numpy()
            b = truth[(truth["experiment"] == run) & (truth["particle_type"] == p.name)][["x", "y", "z"]].to_numpy()
            tp = sum(any(np.linalg.norm(q - ref) <= 0.5 * p.radius for q in a) for ref in b)
            counts[c] += [tp, len(a) - tp, len(b) - tp]
    return counts


def test_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    runs, names = np.array(["TS_A", "TS_B", "TS_C"]), np.array(PARTICLE_NAMES)
    truth = pd.DataFrame({"experiment": rng.choice(runs, 150), "particle_type": rng.choice(names, 150),
                          "x": rng.uniform(0, 1500, 150), "y": rng.uniform(0, 1500, 150),
                          "z": rng.uniform(0, 600, 150)})
    near = truth.sample(120, random_state=1).copy()
    near[["x", "y", "z"]] += rng.normal(scale=25.0, size=(120, 3))
    noise = truth.sample(60, random_state=2).copy()
    noise[["x", "y", "z"]] = rng.uniform(0, 1500, size=(60, 3))
    pred = pd.concat([near, noise], ignore_index=True)
    report = score_picks(pred, truth, particles=CZII_PARTICLES)
    np.testing.assert_array_equal(report.table[["tp", "fp", "fn"]].to_numpy(), brute_force_counts(pred, truth))
    assert 0.0 < report.score < 1.0


def test_reference_best_scores() -> None:
    refs = np.array([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [500.0, 0.0, 0.0]])
    preds = np.array([[0.0, 0.0, 10.0], [0.0, 20.0, 0.0], [100.0, 0.0, 30.0], [100.0, 0.0, 31.0], [900, 0, 0]])
    scores = np.array([0.2, 0.7, 0.9, 0.95, 1.0])
    best = reference_best_scores(preds, scores, refs, hit_radius=30.0)
    np.testing.assert_array_equal(best, [0.7, 0.9, -np.inf])
    assert np.all(reference_best_scores(np.zeros((0, 3)), np.zeros(0), refs, 30.0) == -np.inf)


def test_load_ground_truth(tmp_path: Path) -> None:
    truth = one_of_each("TS_A")
    write_copick_picks(truth, tmp_path / "root" / "train" / "overlay", runs=["TS_A", "TS_E"], user_id="curation",
                       particles=CZII_PARTICLES)
    from_root = load_ground_truth(tmp_path / "root", particles=CZII_PARTICLES)
    assert from_root.attrs["runs"] == ["TS_A", "TS_E"] and len(from_root) == 6
    assert len(load_ground_truth(tmp_path / "root" / "train" / "overlay", particles=CZII_PARTICLES)) == 6
    write_copick_picks(truth, tmp_path / "root" / "test_truth" / "overlay", user_id="curation",
                       particles=CZII_PARTICLES)
    assert len(load_ground_truth(tmp_path / "root" / "test_truth", particles=CZII_PARTICLES)) == 6
    write_submission(truth, tmp_path / "truth.csv", particles=CZII_PARTICLES)
    assert load_ground_truth(tmp_path / "truth.csv", particles=CZII_PARTICLES)[["x", "y",
                                                                                "z"]].to_numpy().sum() == pytest.approx(
        truth[["x", "y", "z"]].to_numpy().sum())
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no ground truth found"):
        load_ground_truth(tmp_path / "empty", particles=CZII_PARTICLES)


@pytest.mark.parametrize("text, message", [
    ("id,experiment,particle_type,x,y\n0,TS_A,ribosome,1,2\n", r"missing columns \['z'\]"),
    ("id,experiment,particle_type,x,y,z\n0,TS_A,ribosome,1,2,oops\n", "'z' is not numeric"),
    ("id,experiment,particle_type,x,y,z\n0,TS_A,ribosome,1,,3\n", "'y' has a missing"),
    ("", "not a readable CSV"),
])
def test_read_submission_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "sub.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_submission(path, particles=CZII_PARTICLES)


def run_cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "postprocess.metric", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_cli(tmp_path: Path) -> None:
    truth = one_of_each("TS_A")
    write_submission(truth, tmp_path / "truth.csv", particles=CZII_PARTICLES)
    write_submission(truth.iloc[:3], tmp_path / "sub.csv", particles=CZII_PARTICLES)
    done = run_cli(tmp_path / "sub.csv", "--gt", tmp_path / "truth.csv")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "score 0.428571"  # classes 1-3 right (weights 1 + 0 + 2) out of 7
    assert "precision" in lines[0] and "f4" in lines[0] and len(lines) == 8
    (tmp_path / "bad.csv").write_text("id,experiment,particle_type,x,y,z\n0,TS_A,proteasome,1,2,3\n")
    bad = run_cli(tmp_path / "bad.csv", "--gt", tmp_path / "truth.csv")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "proteasome" in bad.stderr
    missing = run_cli(tmp_path / "missing.csv", "--gt", tmp_path / "truth.csv")
    assert missing.returncode == 2 and "missing.csv" in missing.stderr


def test_cli_compares_several_submissions(tmp_path: Path) -> None:
    truth = one_of_each("TS_A")
    write_submission(truth, tmp_path / "truth.csv", particles=CZII_PARTICLES)
    write_submission(truth.iloc[:3], tmp_path / "ours.csv", particles=CZII_PARTICLES)
    write_submission(truth, tmp_path / "baseline.csv", particles=CZII_PARTICLES)
    done = run_cli(tmp_path / "ours.csv", tmp_path / "baseline.csv", "--gt", tmp_path / "truth.csv")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "score 0.428571"  # the first submission's score ends the output
    header = next(line for line in lines if line.split()[:1] == ["F4"])
    assert header.split() == ["F4", "ours", "baseline"]
    score_row = next(line for line in lines if line.split()[:1] == ["score"] and len(line.split()) == 3)
    assert score_row.split()[1:] == ["0.4286", "1.0000"]


@pytest.mark.parametrize("split", ["train", "test"])
def test_cli_scores_simulated_truth_as_one(tiny_dataset: Path, tmp_path: Path, split: str) -> None:
    gt = tiny_dataset if split == "train" else tiny_dataset / "test_truth"
    truth = load_ground_truth(gt, particles=CZII_PARTICLES)
    assert len(truth) > 0
    write_submission(truth, tmp_path / "sub.csv", particles=CZII_PARTICLES)
    done = run_cli(tmp_path / "sub.csv", "--gt", gt)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "score 1.000000"
