"""Which loss to default to: train the same recipe with each loss on the same folds, compare validation F4.

``python -m benchmarks.bench_losses --data DATA --out RUNS [--folds 0 3] [--preset cpu]``
prints one row per (loss, fold) and the mean, from each run's ``val_metrics.json``.
"""
from __future__ import annotations

import argparse
import json
import time

from lightning_modules.training_run import fit, resolve_config

VARIANTS: dict[str, dict] = {
    "bce": {"loss": {"kind": "bce"}},  # weighted BCE on Gaussian heatmaps
    "focal": {"loss": {"kind": "focal"}},  # quality focal loss on Gaussian heatmaps
    "ce-point-256": {"loss": {"kind": "ce", "pos_weight": 256.0},  # the 1st place: point targets, CE 256:1
                     "data": {"target_kind": "point"}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--folds", nargs="+", type=int, default=[0, 3])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    rows = []
    for label in args.variants:
        overrides = VARIANTS[label]
        for fold in args.folds:
            cfg = resolve_config(args.preset, None, {**overrides, "data": {**overrides.get("data", {}),
                                 "data_root": args.data, "fold": fold}, "logging": {"wandb": False}})
            start = time.perf_counter()
            paths = fit(cfg, args.out, overwrite=True)
            minutes = (time.perf_counter() - start) / 60
            metrics = json.loads((paths.run_dir / "val_metrics.json").read_text())
            rows.append((label, fold, metrics["score"], minutes))
            print(f"{label:<14} fold {fold}  val F4 {metrics['score']:.3f}  {minutes:.1f} min", flush=True)
    print("\nmean over folds:")
    for label in args.variants:
        scores = [s for lab, _, s, _ in rows if lab == label]
        print(f"{label:<14} {sum(scores) / len(scores):.3f}")


if __name__ == "__main__":
    main()
