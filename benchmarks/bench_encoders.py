"""Does every registry model learn? Cost and accuracy of each network under the same CPU budget.

``python -m benchmarks.bench_encoders --data ROOT --out RUNS [--models ...] [--budget-minutes 6] [--fold 0+1]``

Per model (the CPU recipe with only ``model.name`` changed; smp encoders need patches divisible by 32, which
the recipe's 64^3 is): parameters, forward FLOPs of one 96^3 patch (``torch.utils.flop_counter``, counted, not
timed: the basis of GPU estimates), the CPU seconds of one training step at the recipe's batch, then a
training of ``--fold`` whose epoch count is set so that it takes about ``--budget-minutes`` on this machine
(steps = budget / measured step time, so every model gets the same CPU time and a complete LR schedule).
Scores: the fold's validation F4 (its own held-out runs), and its test F4 with thresholds fitted out of fold
(no TTA, so prediction stays cheap); the classical baseline's test F4 on the same test runs is printed beside.
Rows are appended to ``<out>/encoders.jsonl``.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.bench_model_step import best_step_seconds
from benchmarks.bench_recipes import evaluate, flags
from config.presets import preset_overrides
from runtime.run_status import read_run_status
from config.experiment import InferenceSettings, ModelConfig
from inference.sliding_window import window_starts
from inference.fold_runs import find_fold_runs
from models.registry import MODEL_NAMES, build_model
from particles import FULL_SHAPE_ZYX, PARTICLE_NAMES

REPO = Path(__file__).resolve().parents[1]
CPU = preset_overrides("cpu")


def model_config(name: str) -> ModelConfig:
    """The CPU recipe's network with ``name`` swapped in."""
    model = CPU["model"]
    return ModelConfig(name=name, out_channels=len(PARTICLE_NAMES), output_stride=model["output_stride"],
                       widths=tuple(model["widths"]))


def forward_flops(name: str, patch: int = 96) -> int:
    """Floating-point operations of one forward pass over one ``patch``^3 crop (multiply-add = 2)."""
    model = build_model(model_config(name)).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 1, patch, patch, patch))
    return int(counter.get_total_flops())


def gpu_preset_flops() -> dict[str, Any]:
    """Counted FLOPs of the ``gpu`` preset: its training (forward + backward ~ 3x forward per patch, over every
    patch of every epoch) and one full-size tomogram's prediction (every window, every TTA view, per model)."""
    gpu = preset_overrides("gpu")
    cfg = ModelConfig(name=gpu["model"]["name"], out_channels=len(PARTICLE_NAMES),
                      output_stride=gpu["model"]["output_stride"])
    model = build_model(cfg).eval()
    patch = gpu["data"]["patch_size"]
    window = tuple(gpu["inference"]["window"])
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 1, *patch))
    per_patch = counter.get_total_flops()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 1, *window))
    per_window = counter.get_total_flops()
    overlap = gpu["inference"].get("overlap", InferenceSettings().overlap)
    windows = math.prod(len(window_starts(size, w, overlap, 1)) for size, w in zip(FULL_SHAPE_ZYX, window))
    views = len(gpu["inference"].get("tta", InferenceSettings().tta))
    patches = gpu["data"]["patches_per_epoch"] * gpu["trainer"]["max_epochs"]
    return {"model": cfg.name, "output_stride": cfg.output_stride, "patch": patch, "window": window,
            "gflops_per_patch": per_patch / 1e9, "train_pflops": 3 * per_patch * patches / 1e15,
            "patches": patches, "windows_per_tomogram": windows, "tta_views": views,
            "predict_tflops_per_model": per_window * windows * views / 1e12}


def step_seconds(name: str, repeats: int = 3) -> float:
    """Best wall time of one optimiser step at the recipe's batch and patch, channels-last as trained."""
    torch.manual_seed(0)
    batch, patch = CPU["data"]["batch_size"], CPU["data"]["patch_size"]
    model = build_model(model_config(name)).to(memory_format=torch.channels_last_3d)
    image = torch.randn(batch, 1, *patch).contiguous(memory_format=torch.channels_last_3d)
    return best_step_seconds(model, image, repeats)


def budget_epochs(seconds_per_step: float, budget_minutes: float) -> int:
    """Epochs of the recipe's length that fill the budget (at least one)."""
    steps_per_epoch = CPU["data"]["patches_per_epoch"] // CPU["data"]["batch_size"]
    return max(1, math.floor(budget_minutes * 60 / (seconds_per_step * steps_per_epoch)))


def validation_f4(run_dir: Path) -> float:
    """The last validation F4 the run logged (its metrics.csv)."""
    import pandas as pd

    frames = [pd.read_csv(p) for p in sorted(run_dir.glob("csv/version_*/metrics.csv"))]
    metrics = pd.concat(frames, ignore_index=True)
    return float(metrics["val/score"].dropna().iloc[-1])


def model_costs(name: str) -> dict[str, Any]:
    """Parameters, GFLOPs of a 96^3 forward pass, CPU seconds per training step."""
    return {"model": name, "params": sum(p.numel() for p in build_model(model_config(name)).parameters()),
            "gflops_96": forward_flops(name) / 1e9, "s_per_step": step_seconds(name)}


def train_loss_ends(run_dir: Path) -> tuple[float, float]:
    """Mean training loss over the first and over the last tenth of the logged steps: did it learn at all?"""
    import pandas as pd

    frames = [pd.read_csv(p) for p in sorted(run_dir.glob("csv/version_*/metrics.csv"))]
    loss = pd.concat(frames, ignore_index=True)["train/loss"].dropna().to_numpy()
    n = max(1, len(loss) // 10)
    return float(loss[:n].mean()), float(loss[-n:].mean())


def markdown_table(out: Path) -> str:
    """The rows of ``<out>/encoders.jsonl`` (the last per model) as the BENCHMARKS.md table."""
    rows: dict[str, dict[str, Any]] = {}
    for line in (out / "encoders.jsonl").read_text().splitlines():
        row = json.loads(line)
        rows[row["model"]] = row
    lines = ["| model | params | GFLOP per 96³ forward | CPU s/step (4 × 64³) | epochs in budget | train min | "
             "train loss first → last tenth | val F4 | OOF CV | test F4 (3 runs) |", "|---" * 10 + "|"]
    for name, row in rows.items():
        first, last = train_loss_ends(out / f"enc-{name}_fold{row['fold']}")
        lines.append(f"| {name} | {row['params'] / 1e6:.1f} M | {row['gflops_96']:.1f} | {row['s_per_step']:.2f} | "
                     f"{row['epochs']} | {row['train_minutes']:.1f} | {first:.3f} → {last:.3f} | "
                     f"{row['val_f4']:.3f} | {row['oof_cv']:.3f} | {row['test']:.3f} |")
    return "\n".join(lines)


def run_model(costs: dict[str, Any], data: Path, out: Path, fold: str, budget_minutes: float) -> dict[str, Any]:
    """Train ``costs["model"]`` for the budget (epochs from the measured step time), then score it."""
    name = costs["model"]
    epochs = budget_epochs(costs["s_per_step"], budget_minutes)
    label = f"enc-{name}"
    cmd = [sys.executable, str(REPO / "train.py"), "--fold", fold, "--data", str(data), "--out", str(out),
           "--overwrite", "--experiment", label, *flags({"model": {"name": name},
                                                          "trainer": {"max_epochs": epochs,
                                                                      "check_val_every_n_epoch": epochs}})]
    finished = out / f"{label}_fold{fold}"
    if (read_run_status(finished) or {}).get("status") == "finished":  # trained by an earlier call: scored again
        started = (finished / "config.yaml").stat().st_mtime
        train_minutes = (datetime.fromisoformat(read_run_status(finished)["time"]).timestamp() - started) / 60
    else:
        start = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        train_minutes = (time.perf_counter() - start) / 60
    fold_runs = find_fold_runs(out, label)
    scores = evaluate(fold_runs, data, {"tta": ["identity"]})
    return {**costs, "epochs": epochs,
            "train_minutes": train_minutes, "val_f4": validation_f4(fold_runs[0].run_dir),
            "oof_cv": scores["oof_cv"], "test": scores["test"], "test_per_class": scores["test_per_class"],
            "fold": fold, "data": str(data), "budget_minutes": budget_minutes,
            "date": time.strftime("%Y-%m-%d %H:%M")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="simulated copick root with test_truth")
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs and encoders.jsonl")
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    parser.add_argument("--fold", default="0+1", help="the fold (or pair) every model trains")
    parser.add_argument("--budget-minutes", type=float, default=6.0, help="training wall time per model")
    parser.add_argument("--costs-only", action="store_true", help="params, FLOPs and step time; no training")
    parser.add_argument("--table", action="store_true", help="print the results in --out as a markdown table")
    parser.add_argument("--gpu-estimate", action="store_true", help="FLOPs of the gpu preset's training and of "
                                                                     "one full-size prediction; no training")
    parser.add_argument("--costs", type=Path, help="a --costs-only output (JSON lines) measured on an idle "
                                                   "machine: its step times set the epochs")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    if args.table:
        print(markdown_table(args.out))
        return
    if args.gpu_estimate:
        print(json.dumps(gpu_preset_flops()), flush=True)
        return
    measured = {}
    if args.costs:
        measured = {row["model"]: row for row in map(json.loads, args.costs.read_text().splitlines()) if row}
    for name in args.models:
        if args.costs_only:
            print(json.dumps(model_costs(name)), flush=True)
            continue
        row = run_model(measured.get(name) or model_costs(name), args.data, args.out, args.fold, args.budget_minutes)
        with open(args.out / "encoders.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{name:<16} {row['params'] / 1e6:6.2f} M  {row['gflops_96']:7.1f} GFLOP/96^3  "
              f"{row['s_per_step']:.2f} s/step  {row['epochs']} epochs ({row['train_minutes']:.1f} min)  "
              f"val F4 {row['val_f4']:.3f}  OOF {row['oof_cv']:.3f}  test {row['test']:.3f}", flush=True)


if __name__ == "__main__":
    main()
