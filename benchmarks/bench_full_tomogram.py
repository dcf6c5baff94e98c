"""Seconds and peak memory to predict one full-size 184x630x630 tomogram with the CPU recipe's ensemble.

``python -m benchmarks.bench_full_tomogram [--models 7] [--modes legacy fused-fp32 fused-bf16 ...]`` runs each
mode in a process of its own (so each peak memory is its own) on the same seeded volume and models, and prints
one line per mode; ``--json FILE`` also writes them. Modes:

* ``legacy``: how ``ensemble.py`` predicted before the one-pass predictor: every model and every test-time view
  its own sliding-window pass over the whole (transformed) volume, float32, window 96x320x320 (the earlier
  default; ``--legacy-window``).
* ``fused-fp32`` / ``fused-bf16``: ``inference.probabilities.predict_probabilities`` as the ensemble runs it (one
  pass, every window cut once, all models x views on it) at ``--window`` (default: the recipe's), in float32
  or with bfloat16 autocast.
* ``monai`` / ``single``: one model, no views, the same window, overlap and Gaussian blend, through MONAI's
  ``sliding_window_inference`` and through this project's, for the side-by-side ratio.

The models are the recipe's network with seeded random weights (the compute does not depend on the weights),
loaded as ``ensemble.py`` loads a checkpoint (eval, channels-last); the volume is seeded noise. For picks and
F4 of trained models compare ``ensemble.py --score`` runs (BENCHMARKS.md).
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from config.resolve import resolve_config
from inference.activation import activation_channels
from inference.probabilities import predict_probabilities
from inference.sliding_window import sliding_window_logits
from inference.tta import get_transforms
from models.registry import build_model

FULL_SIZE: tuple[int, int, int] = (184, 630, 630)
LEGACY_WINDOW: tuple[int, int, int] = (96, 320, 320)
MODES: tuple[str, ...] = ("legacy", "fused-fp32", "fused-bf16", "monai", "single")


def recipe_models(count: int, preset: str = "cpu") -> tuple[list[nn.Module], object]:
    """``count`` seeded networks of ``preset`` as the ensemble loads them, and the recipe's config."""
    cfg = resolve_config(preset, None, {})
    models = []
    for seed in range(count):
        torch.manual_seed(seed)
        model = build_model(cfg.model).eval()
        if cfg.trainer.channels_last:
            model = model.to(memory_format=torch.channels_last_3d)
        models.append(model)
    return models, cfg


def legacy_probabilities(models: list[nn.Module], volume: torch.Tensor, cfg, window: tuple[int, int,
                                                                                           int]) -> torch.Tensor:
    """The earlier predictor: each model x view a whole-volume pass (the volume turned, windows cut, turned back)."""
    infer, stride = cfg.inference, cfg.model.output_stride
    channels = activation_channels("sigmoid", num_classes=cfg.particle_set.num_classes)
    out_shape = tuple(math.ceil(n / stride) for n in volume.shape)
    total = None
    for model in models:
        for view in get_transforms(infer.tta):
            moved = view.forward(volume, stride).contiguous()
            logits = sliding_window_logits(model, moved, window, infer.overlap, infer.batch_size, channels, stride)
            logits = view.inverse(logits, out_shape)
            total = logits.clone() if total is None else total.add_(logits)
    return torch.sigmoid(total / (len(models) * len(infer.tta)))


def monai_logits(model: nn.Module, volume: torch.Tensor, window: tuple[int, int, int], overlap: float) -> torch.Tensor:
    """MONAI's sliding window with the same window, overlap, Gaussian blend and batch of one."""
    from monai.inferers import sliding_window_inference

    with torch.inference_mode():
        return sliding_window_inference(volume[None, None], window, 1, model, overlap=overlap, mode="gaussian",
                                        sigma_scale=0.125, padding_mode="reflect")[0]


def run_mode(mode: str, models_count: int, window: tuple[int, int, int] | None,
             legacy_window: tuple[int, int, int]) -> dict[str, object]:
    """Time one mode in this process (after building models and volume) and read its peak memory."""
    models, cfg = recipe_models(models_count if mode not in ("monai", "single") else 1)
    infer = cfg.inference
    window = tuple(window or infer.window)
    volume = torch.randn(FULL_SIZE, generator=torch.Generator().manual_seed(0))
    channels = activation_channels("sigmoid", num_classes=cfg.particle_set.num_classes)
    start = time.perf_counter()
    if mode == "legacy":
        window = legacy_window
        legacy_probabilities(models, volume, cfg, window)
    elif mode in ("fused-fp32", "fused-bf16"):
        predict_probabilities(models, volume, "sigmoid", window, infer.overlap, infer.batch_size, infer.tta,
                              autocast_dtype=torch.bfloat16 if mode == "fused-bf16" else None,
                              num_classes=cfg.particle_set.num_classes)
    elif mode == "monai":
        monai_logits(models[0], volume, window, infer.overlap)
    elif mode == "single":
        sliding_window_logits(models[0], volume, window, infer.overlap, 1, channels, cfg.model.output_stride)
    else:
        raise ValueError(f"unknown mode {mode!r}; choose from {MODES}")
    seconds = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB
    views = 1 if mode in ("monai", "single") else len(infer.tta)
    return {"mode": mode, "seconds": round(seconds, 1), "peak_gib": round(peak_gib, 2),
            "models": len(models), "views": views, "window": list(window), "overlap": infer.overlap,
            "threads": torch.get_num_threads(), "shape": list(FULL_SIZE)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=7, help="ensemble size (default: %(default)s)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--window", type=int, nargs=3, help="window of the fused, monai and single modes "
                                                            "(default: the recipe's)")
    parser.add_argument("--legacy-window", type=int, nargs=3, default=LEGACY_WINDOW)
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child process: run this mode and print its JSON
    args = parser.parse_args()
    window = tuple(args.window) if args.window else None
    if args.one:
        print(json.dumps(run_mode(args.one, args.models, window, tuple(args.legacy_window))))
        return
    results = []
    for mode in args.modes:
        command = [sys.executable, "-m", "benchmarks.bench_full_tomogram", "--one", mode, "--models", str(args.models),
                   "--legacy-window", *map(str, args.legacy_window), *(["--window", *map(str,
                                                                                         window)] if window else [])]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(result)
        print(f"{mode:<11} {result['models']} model(s) x {result['views']} view(s), window {result['window']}: "
              f"{result['seconds']:8.1f} s, peak {result['peak_gib']:.2f} GiB", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
