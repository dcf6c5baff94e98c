"""Seconds per training step (forward + backward + AdamW) of the small U-Net on the CPU, by layout.

``python -m benchmarks.bench_model_step [--batch 4] [--patch 64] [--repeats 4]`` prints the best of
``--repeats`` steps for each variant: why the ``cpu`` preset uses a strided stem and channels-last.
"""
from __future__ import annotations

import argparse
import time

import torch

from config.experiment import ModelConfig
from models.registry import build_model

VARIANTS: tuple[tuple[str, tuple[int, ...], int, bool], ...] = (
    ("widths 8-16-32-64, stride 1, contiguous", (8, 16, 32, 64), 1, False),
    ("widths 8-16-32-64, stride 1, channels-last", (8, 16, 32, 64), 1, True),
    ("widths 8-16-32-64, strided stem, contiguous", (8, 16, 32, 64), 2, False),
    ("widths 8-16-32-64, strided stem, channels-last", (8, 16, 32, 64), 2, True),
    ("widths 16-32-64-128, strided stem, channels-last (old cpu-demo)", (16, 32, 64, 128), 2, True),
)


def step_seconds(widths: tuple[int, ...], stride: int, channels_last: bool, batch: int, patch: int,
                 repeats: int) -> float:
    """Best wall time of one optimiser step over ``repeats`` (after one warm-up step)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="unet-tiny", out_channels=6, output_stride=stride, widths=widths))
    image = torch.randn(batch, 1, patch, patch, patch)
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
        image = image.contiguous(memory_format=torch.channels_last_3d)
    return best_step_seconds(model, image, repeats)


def best_step_seconds(model: torch.nn.Module, image: torch.Tensor, repeats: int) -> float:
    """Best wall time of one forward + backward + AdamW step over ``repeats`` (after one warm-up step)."""
    optimizer = torch.optim.AdamW(model.parameters())
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        model(image).float().mean().backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch} of {args.patch}^3")
    for label, widths, stride, channels_last in VARIANTS:
        seconds = step_seconds(widths, stride, channels_last, args.batch, args.patch, args.repeats)
        print(f"{label:<62} {seconds:.3f} s/step", flush=True)


if __name__ == "__main__":
    main()
