"""Checkpoint size and save time per preset: the full ``last.ckpt`` (what ``--resume`` needs) against the slim
``best.ckpt`` (what inference needs).

``python -m benchmarks.bench_checkpoint_size [--presets gpu cpu]`` trains each preset for one step on a tiny
simulated dataset (sizes do not depend on the data) with ``--validation.checkpoint best`` and prints the two
files' sizes, the parameter count and the save time of each.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from lightning_modules.checkpoint_files import AtomicCheckpointIO
from config.presets import PRESETS
from config.resolve import resolve_config
from lightning_modules.training_run import fit
from simulation import simulate_dataset


def measure(preset: str, data: Path, out: Path) -> dict[str, float]:
    tiny = {"data": {"data_root": str(data), "fold": 0, "patch_size": [32, 32, 32], "batch_size": 2,
                     "num_workers": 0, "patches_per_epoch": 2},
            "inference": {"window": [32, 64, 64], "batch_size": 1},
            "validation": {"picture": False, "checkpoint": "best"},
            "trainer": {"accelerator": "cpu", "devices": "1", "max_epochs": 1, "check_val_every_n_epoch": 1},
            "logging": {"wandb": False}}
    paths = fit(resolve_config(preset, None, tiny), out)
    state = torch.load(paths.last, map_location="cpu", weights_only=False)
    params = sum(v.numel() for k, v in state["state_dict"].items() if k.startswith("model.") and v.is_floating_point())
    timings = {}
    for name in ("last", "best"):
        path = getattr(paths, name)
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        start = time.perf_counter()
        AtomicCheckpointIO().save_checkpoint(checkpoint, out / f"resave_{name}.ckpt")
        timings[name] = time.perf_counter() - start
    return {"params_M": params / 1e6, "last_MB": paths.last.stat().st_size / 1e6,
            "best_MB": paths.best.stat().st_size / 1e6, "last_save_s": timings["last"],
            "best_save_s": timings["best"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=sorted(PRESETS), choices=sorted(PRESETS))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        data = simulate_dataset(Path(scratch) / "data", size=(48, 96, 96), seed=0, n_test=1)
        rows = {preset: measure(preset, data, Path(scratch) / preset) for preset in args.presets}
    print("| preset | parameters | last.ckpt (resume) | best.ckpt (inference) | save last | save best |")
    print("|---|---|---|---|---|---|")
    for preset, r in rows.items():
        print(f"| {preset} | {r['params_M']:.1f} M | {r['last_MB']:.0f} MB | {r['best_MB']:.0f} MB | "
              f"{r['last_save_s']:.2f} s | {r['best_save_s']:.2f} s |")


if __name__ == "__main__":
    main()
