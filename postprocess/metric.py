"""The CZII challenge metric (F-beta, beta 4, weighted over classes), exactly as the challenge defines it.

Per experiment and class a reference is hit when a prediction lies within
``HIT_RADIUS_FRACTION * radius`` (Å, distance <= r); TP = distinct references hit,
FP = predictions - TP, FN = references - TP, summed over experiments per class.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from runtime.cli_errors import run_tool
from dataio.layout import overlay_runs_dir, truth_overlay_root, train_overlay_root
from dataio.particle_sets import particles_from_source
from dataio.pick_readers import PickSelection, read_overlay, read_picks_csv, validate_picks
from particles import BETA, HIT_RADIUS_FRACTION, ParticleSet



@dataclass(frozen=True)
class MetricReport:
    """Per-class counts and F-beta (index particle_type, all six classes) and the weighted score."""

    table: pd.DataFrame
    score: float


def f_beta(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, beta: float = BETA) -> tuple[np.ndarray, ...]:
    """Precision, recall and F-beta per entry; each is 0 where undefined (division by zero)."""
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
    b2 = beta * beta
    denom = b2 * precision + recall
    f = np.divide((1 + b2) * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f


def _stacked_xyz(table: pd.DataFrame, run_index: dict[str, int], shift: float) -> np.ndarray:
    """Coordinates ``[N, 3]`` with each experiment moved ``shift`` Å apart in x, so one tree serves all."""
    xyz = table[["x", "y", "z"]].to_numpy(dtype=np.float64)
    offset = table["experiment"].map(run_index).to_numpy(dtype=np.float64) * shift
    return xyz + np.stack([offset, np.zeros_like(offset), np.zeros_like(offset)], axis=1)


def score_picks(predictions: pd.DataFrame, ground_truth: pd.DataFrame,
                runs: Sequence[str] | None = None, *, particles: ParticleSet) -> MetricReport:
    """Score a picks table against the truth; ``runs`` (default ``ground_truth.attrs['runs']`` or its
    experiments) are the experiments the truth covers: predictions elsewhere are an error. ``particles``:
    the classes, their hit radii and weights."""
    pred = validate_picks(predictions, "predictions", particles=particles)
    truth = validate_picks(ground_truth, "ground truth", particles=particles)
    if runs is None:
        runs = ground_truth.attrs.get("runs", sorted(truth["experiment"].unique()))
    known = set(map(str, runs)) | set(truth["experiment"])
    strangers = sorted(set(pred["experiment"]) - known)
    if strangers:
        raise ValueError(f"predictions for experiments not in the ground truth: {strangers}")
    run_index = {run: i for i, run in enumerate(sorted(known))}
    coords = np.concatenate([pred[["x", "y", "z"]].to_numpy(), truth[["x", "y", "z"]].to_numpy()])
    max_radius = max(p.radius for p in particles.particles)
    shift = 2.0 * (float(np.abs(coords).max()) if len(coords) else 0.0) + 4.0 * max_radius + 1.0

    names = list(particles.names)
    tp = np.zeros(len(names), dtype=np.int64)
    n_pred = pred["particle_type"].value_counts().reindex(names, fill_value=0).to_numpy()
    n_ref = truth["particle_type"].value_counts().reindex(names, fill_value=0).to_numpy()
    pred_groups, ref_groups = pred.groupby("particle_type"), truth.groupby("particle_type")
    for c, p in enumerate(particles.particles):
        if n_pred[c] == 0 or n_ref[c] == 0:
            continue
        pred_xyz = _stacked_xyz(pred_groups.get_group(p.name), run_index, shift)  # [P, 3]
        ref_xyz = _stacked_xyz(ref_groups.get_group(p.name), run_index, shift)  # [R, 3]
        nearest, _ = cKDTree(pred_xyz).query(ref_xyz, k=1)  # [R] distance to the closest prediction
        tp[c] = int(np.count_nonzero(nearest <= HIT_RADIUS_FRACTION * p.radius))
    fp, fn = n_pred - tp, n_ref - tp
    precision, recall, f4 = f_beta(tp, fp, fn)
    weights = np.array([p.weight for p in particles.particles], dtype=np.float64)
    table = pd.DataFrame({"precision": precision, "recall": recall, "f4": f4, "tp": tp, "fp": fp,
                          "fn": fn, "weight": weights},
                         index=pd.Index(names, name="particle_type"))
    return MetricReport(table=table, score=float((weights * f4).sum() / weights.sum()))


def reference_best_scores(pred_xyz: np.ndarray, pred_scores: np.ndarray, ref_xyz: np.ndarray,
                          hit_radius: float) -> np.ndarray:
    """For each reference ``[R, 3]``, the best score of a prediction ``[P, 3]`` within ``hit_radius``
    (Å, distance <= r); -inf where none. A threshold t hits the reference iff t <= its value."""
    pred_xyz = np.asarray(pred_xyz, dtype=np.float64).reshape(-1, 3)
    ref_xyz = np.asarray(ref_xyz, dtype=np.float64).reshape(-1, 3)
    pred_scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    if len(pred_scores) != len(pred_xyz):
        raise ValueError(f"{len(pred_xyz)} predictions but {len(pred_scores)} scores")
    best = np.full(len(ref_xyz), -np.inf)
    if not len(pred_xyz) or not len(ref_xyz):
        return best
    pairs = cKDTree(ref_xyz).sparse_distance_matrix(cKDTree(pred_xyz), hit_radius, output_type="ndarray")
    hit = pairs["v"] <= hit_radius
    np.maximum.at(best, pairs["i"][hit], pred_scores[pairs["j"][hit]])
    return best


def load_ground_truth(path: str | Path, selection: PickSelection = PickSelection(),
                      *, particles: ParticleSet) -> pd.DataFrame:
    """Truth picks from a CSV, a dataset root (``train/overlay``), ``<root>/test_truth`` or an overlay root;
    ``attrs['runs']`` lists the experiments covered, including those with no particles."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"ground truth not found: {path}")
    if path.is_file():
        table = read_picks_csv(path, particles=particles)
        table.attrs["runs"] = sorted(table["experiment"].unique())
        return table
    for overlay in (train_overlay_root(path), path / "overlay", path):
        if overlay_runs_dir(overlay).is_dir():
            return read_overlay(overlay, selection, particles=particles)
    raise FileNotFoundError(
        f"{path}: no ground truth found; expected a CSV, {train_overlay_root(path)}, "
        f"{path / 'overlay' / 'ExperimentRuns'} (e.g. {truth_overlay_root('<root>')}) "
        f"or {overlay_runs_dir(path)}")


def read_submission(path: str | Path, *, particles: ParticleSet) -> pd.DataFrame:
    """A submission CSV (id, experiment, particle_type, x, y, z in Å) as a checked picks table."""
    return read_picks_csv(path, particles=particles)


def format_report(report: MetricReport) -> str:
    """The per-class table and a last line ``score <value>``."""
    shown = report.table.loc[:, ["precision", "recall", "f4", "tp", "fp", "fn", "weight"]].reset_index()
    text = shown.to_string(index=False, float_format=lambda v: f"{v:.4f}")
    return f"{text}\nscore {report.score:.6f}"


def report_scores(report: MetricReport, prefix: str) -> dict[str, float]:
    """``{prefix}/score`` and ``{prefix}/{f4,precision,recall}/{class}``: a report as flat named numbers (W&B
    summaries, JSON records)."""
    scores = {f"{prefix}/score": float(report.score)}
    for name, row in report.table.iterrows():
        scores.update({f"{prefix}/{column}/{name}": float(row[column]) for column in ("f4", "precision", "recall")})
    return scores


def comparison_table(reports: Mapping[str, MetricReport]) -> str:
    """Per-class F4 of several submissions side by side (columns in the given order), then their scores."""
    table = pd.DataFrame({label: r.table["f4"] for label, r in reports.items()})
    table.loc["score"] = [r.score for r in reports.values()]
    table.index.name = "F4"
    return table.reset_index().to_string(index=False, float_format=lambda v: f"{v:.4f}")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: score one submission (or several, then compared per class); bad input: one-line error, exit 2."""
    parser = argparse.ArgumentParser(prog="python -m postprocess.metric", description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, nargs="+", metavar="submission",
                        help="submission CSV (id,experiment,particle_type,x,y,z); several are scored in turn "
                             "and compared per class, the first last (its score ends the output)")
    parser.add_argument("--gt", type=Path, required=True,
                        help="dataset root, <root>/test_truth, an overlay root, or a CSV of true picks")
    parser.add_argument("--user-id", default=PickSelection.user_id,
                        help="copick user id of the true picks in an overlay (default: %(default)s)")
    parser.add_argument("--session-id", default=None,
                        help="copick session id of the true picks (default: the user's only session)")
    parser.add_argument("--particles", default="czii",
                        help="the classes scored: czii (default), copick (the --gt root's copick config), or a "
                             "particles file / copick config JSON (radii and weights)")
    args = parser.parse_args(argv)
    return run_tool("postprocess.metric", lambda: print_scores(args))


def print_scores(args: argparse.Namespace) -> int:
    particles = particles_from_source(args.particles, args.gt)
    truth = load_ground_truth(args.gt, PickSelection(args.user_id, args.session_id), particles=particles)
    reports = {str(path): score_picks(read_submission(path, particles=particles), truth, particles=particles)
               for path in args.submissions}
    if len(reports) > 1:
        labels = {str(path): path.stem for path in args.submissions}
        if len(set(labels.values())) < len(labels):
            labels = {key: key for key in labels}
        for key, report in list(reports.items())[1:]:
            print(f"{key}:\n{format_report(report)}\n")
        print(comparison_table({labels[k]: r for k, r in reports.items()}) + "\n")
        print(f"{args.submissions[0]}:")
    print(format_report(next(iter(reports.values()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
