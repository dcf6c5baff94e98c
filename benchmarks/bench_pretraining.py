"""Pre-training on simulation, then fine-tuning, against training from scratch, on a level the pre-training
set leaves out.

``python -m benchmarks.bench_pretraining --target ROOT --out DIR [--pretrain-snr 1:8] [--folds 0+1 2+3]
[--train-args --trainer.max_epochs 12]``

1. ``simulate.py``: ``--pretrain-runs`` runs whose SNR is log-uniform in ``--pretrain-snr`` (each with its own
   random imaging), no test runs; kept and reused when ``<out>/pretrain_data`` exists.
2. ``train.py`` pre-trains one model (CPU recipe, ``--pretrain-epochs``) on all of them but one (fold 0
   validates on it); kept and reused when it finished.
3. The pair models of ``--folds`` on ``--target``, once from scratch and once ``--init-from`` the pre-trained
   model, same recipe and budget (``--train-args``); each scored like ``bench_recipes`` (OOF CV, the test runs
   with OOF thresholds, per class), rows appended to ``<out>/results.jsonl`` (labels ``scratch`` and
   ``finetuned``).
The pre-training range must leave out the target's level (e.g. 1:8 against ``hard``, SNR 0.5) for the table
to say what pre-training gives on data it did not see.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench_recipes import POSTPROCESS, REPO, record, run_variant
from runtime.run_status import read_run_status

PRETRAINED = "pretrained"
"""Experiment name of the pre-trained model: its run folder is ``<out>/pretrain_runs/pretrained_fold0``."""


def simulate_pretraining_set(data: Path, runs: int, snr: str, seed: int) -> float:
    """Write the pre-training set unless it is there; seconds taken (0 when reused)."""
    if (data / "difficulty.json").is_file():
        return 0.0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / "simulate.py"), "--out", str(data), "--n-train", str(runs),
                    "--n-test", "0", "--difficulty", snr, "--seed", str(seed), "--overwrite"], cwd=REPO, check=True)
    return time.perf_counter() - t0


def pretrain(data: Path, runs_dir: Path, epochs: int) -> tuple[Path, float]:
    """Pre-train one model on the set (fold 0 validates) unless it finished before; (run folder, seconds)."""
    run_dir = runs_dir / f"{PRETRAINED}_fold0"
    status = read_run_status(run_dir) if run_dir.is_dir() else None
    if status is not None and status.get("status") == "finished":
        return run_dir, 0.0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / "train.py"), "--fold", "0", "--data", str(data),
                    "--data.folds_file", str(data / "folds.yaml"), "--experiment", PRETRAINED,
                    "--out", str(runs_dir), "--overwrite", "--trainer.max_epochs", str(epochs)],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return run_dir, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=Path, required=True, help="simulated copick root with test_truth: the "
                        "level to fine-tune on and score")
    parser.add_argument("--out", type=Path, required=True, help="folder for the sets, runs and results.jsonl")
    parser.add_argument("--pretrain-runs", type=int, default=32, help="runs in the pre-training set")
    parser.add_argument("--pretrain-snr", default="1:8", help="SNR range LOW:HIGH of the pre-training set")
    parser.add_argument("--pretrain-epochs", type=int, default=72, help="pre-training epochs (CPU recipe)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the pre-training set")
    parser.add_argument("--folds", nargs="+", default=["0+1", "2+3"], help="pair models to train on the target")
    parser.add_argument("--postprocess", nargs="+", default=["as-trained"], choices=sorted(POSTPROCESS))
    parser.add_argument("--skip-scratch", action="store_true", help="train only the fine-tuned models")
    parser.add_argument("--train-args", nargs=argparse.REMAINDER, default=[],
                        help="further train.py flags for the target's models (last on the line)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / "pretrain_data"
    simulated = simulate_pretraining_set(data, args.pretrain_runs, args.pretrain_snr, args.seed)
    run_dir, pretrained = pretrain(data, args.out / "pretrain_runs", args.pretrain_epochs)
    print(f"pre-training set {data} ({simulated:.0f} s), pre-trained model {run_dir} ({pretrained / 60:.1f} min)",
          flush=True)
    setup = {"pretrain_runs": args.pretrain_runs, "pretrain_snr": args.pretrain_snr,
             "pretrain_epochs": args.pretrain_epochs, "pretrain_minutes": pretrained / 60}
    arms = [("finetuned", ["--init-from", str(run_dir.absolute())])]
    if not args.skip_scratch:
        arms.insert(0, ("scratch", []))
    for label, extra in arms:
        for row in run_variant("default", args.target, args.out, args.folds, [*extra, *args.train_args],
                               args.postprocess, label=label):
            record(args.out, {**row, **setup})


if __name__ == "__main__":
    main()
