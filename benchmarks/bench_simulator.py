"""Benchmark the simulator: one full-size tomogram (simulate + zarr) and the whole demo dataset."""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


from particles import FULL_SHAPE_ZYX
from simulation import simulate_dataset
from simulation.tomogram import simulate_run
from dataio.zarr_writer import write_multiscale_zarr


def bench_full(workdir: Path, seed: int, templates: Path | None) -> dict[str, float]:
    """Seconds to simulate one 184x630x630 tomogram and to write it as a multiscale zarr."""
    t0 = time.perf_counter()
    simulated = simulate_run(FULL_SHAPE_ZYX, np.random.default_rng(seed), templates=templates)
    volumes, picks = simulated.volumes, simulated.picks
    t1 = time.perf_counter()
    write_multiscale_zarr(workdir / "full.zarr", volumes["denoised"])
    t2 = time.perf_counter()
    return {"full_simulate_s": t1 - t0, "full_zarr_s": t2 - t1, "full_total_s": t2 - t0,
            "full_particles": float(len(picks))}


def bench_demo(workdir: Path, seed: int, templates: Path | None) -> dict[str, float]:
    """Seconds to write the demo dataset (7 train + 3 test runs) with simulate_dataset."""
    t0 = time.perf_counter()
    simulate_dataset(workdir / "demo", size="demo", seed=seed, templates=templates)
    return {"demo_dataset_s": time.perf_counter() - t0}


def main() -> None:
    """Run both benchmarks in a temporary folder and print one ``name value`` line each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--templates", type=Path, default=None, help="optional MRC template folder")
    parser.add_argument("--skip-full", action="store_true", help="only the demo dataset")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench_simulator_"))
    try:
        results = {} if args.skip_full else bench_full(workdir, args.seed, args.templates)
        results.update(bench_demo(workdir, args.seed, args.templates))
    finally:
        shutil.rmtree(workdir)
    print(f"cpus {os.cpu_count()}")
    for name, value in results.items():
        print(f"{name} {value:.2f}")


if __name__ == "__main__":
    main()
