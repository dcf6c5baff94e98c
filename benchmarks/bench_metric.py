"""Time the official metric on a test-set-sized submission: 500 tomograms x 1,000 predictions (goal <= 2 s)."""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from particles import CZII_PARTICLES, FULL_SHAPE_ZYX, PARTICLE_NAMES, VOXEL_SPACING, particle
from postprocess.metric import reference_best_scores, score_picks

CLASS_MIX = np.array([375, 87, 112, 331, 251, 113], dtype=np.float64)  # real training counts per class


def random_picks(rng: np.random.Generator, runs: int, per_run: int) -> pd.DataFrame:
    """Uniform picks in full-size volumes with the real class mix."""
    n = runs * per_run
    extent = np.array(FULL_SHAPE_ZYX[::-1], dtype=np.float64) * VOXEL_SPACING  # x, y, z in Å
    return pd.DataFrame({
        "experiment": np.repeat([f"TS_{i}" for i in range(runs)], per_run).astype(object),
        "particle_type": rng.choice(np.array(PARTICLE_NAMES, dtype=object), n, p=CLASS_MIX / CLASS_MIX.sum()),
        "x": rng.uniform(0, extent[0], n), "y": rng.uniform(0, extent[1], n), "z": rng.uniform(0, extent[2], n)})


def main() -> None:
    """Build truth (~200/run) and predictions (half near the truth, the rest random), then time scoring."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--predictions", type=int, default=1000, help="predictions per run")
    parser.add_argument("--truth", type=int, default=200, help="true particles per run")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    truth = random_picks(rng, args.runs, args.truth)
    near = truth.sample(frac=0.8, random_state=0).copy()
    near[["x", "y", "z"]] += rng.normal(scale=20.0, size=(len(near), 3))
    noise = random_picks(rng, args.runs, args.predictions - len(near) // args.runs)
    pred = pd.concat([near, noise], ignore_index=True)
    start = time.perf_counter()
    report = score_picks(pred, truth, particles=CZII_PARTICLES)
    seconds = time.perf_counter() - start
    print(report.table.to_string())
    print(f"score_picks: {args.runs} runs, {len(pred)} predictions, {len(truth)} references: "
          f"{seconds:.3f} s (score {report.score:.4f})")
    ribosome = particle("ribosome")
    pick = pred["particle_type"] == ribosome.name
    start = time.perf_counter()
    reference_best_scores(pred.loc[pick, ["x", "y", "z"]].to_numpy(), rng.uniform(size=int(pick.sum())),
                          truth.loc[truth["particle_type"] == ribosome.name, ["x", "y", "z"]].to_numpy(),
                          0.5 * ribosome.radius)
    print(f"reference_best_scores (ribosome, one pooled run): {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
