"""Time opening a run and reading random 96^3 patches from a full-size zarr tomogram, as training does."""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

from dataio.copick_source import CopickSource
from dataio.layout import tomogram_path
from particles import CZII_PARTICLES, FULL_SHAPE_ZYX


def write_full_tomogram(root: Path, chunk: int, seed: int = 0, simulator_writer: bool = False) -> None:
    """One train run, levels 0/1/2, float32 noise (compresses about as badly as a real tomogram).

    Default zarr v2 compressor and ``chunk``^3 chunks, or the simulator's own writer.
    """
    volume = np.random.default_rng(seed).normal(size=FULL_SHAPE_ZYX).astype(np.float32)  # [184, 630, 630]
    (root / "train" / "overlay" / "ExperimentRuns" / "TS_5_4").mkdir(parents=True, exist_ok=True)
    if simulator_writer:
        from dataio.zarr_writer import write_multiscale_zarr
        write_multiscale_zarr(tomogram_path(root, "train", "TS_5_4"), volume)
        return
    group = zarr.open_group(str(tomogram_path(root, "train", "TS_5_4")), mode="w")
    for level in range(3):
        step = 2 ** level
        group.create_dataset(str(level), data=volume[::step, ::step, ::step], chunks=(chunk,) * 3)
    group.attrs["multiscales"] = [{"version": "0.4", "datasets": [{"path": str(lv)} for lv in range(3)]}]


def time_reads(root: Path, patch: int, repeats: int, seed: int = 1) -> dict[str, float]:
    """Seconds to open the run, to read the first patch after opening, and the median of ``repeats`` more."""
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    source = CopickSource(root, particles=CZII_PARTICLES)
    run = source.run_names()[0]
    array = source.tomogram(run)
    opened = time.perf_counter() - start
    shape = np.array(array.shape)

    def read_one() -> float:
        corner = [int(rng.integers(0, max(1, s - patch + 1))) for s in shape]
        t0 = time.perf_counter()
        block = array[tuple(slice(c, c + patch) for c in corner)]  # [96, 96, 96] float32
        assert block.shape == tuple(min(patch, int(s)) for s in shape)
        return time.perf_counter() - t0

    first = read_one()
    warm = [read_one() for _ in range(repeats)]
    return {"open": opened, "first_read": first, "warm_median": float(np.median(warm)),
            "warm_p90": float(np.percentile(warm, 90)), "full_load": _time_full(source, run)}


def _time_full(source: CopickSource, run: str) -> float:
    t0 = time.perf_counter()
    source.load_tomogram(run)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=None,
                        help="an existing copick dataset (e.g. simulated) instead of writing one")
    parser.add_argument("--chunks", type=int, nargs="+", default=[64], help="chunk edge(s) to compare")
    parser.add_argument("--patch", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--simulator-writer", action="store_true",
                        help="write with dataio.zarr_writer (its chunks and compressor) instead")
    args = parser.parse_args()
    print("note: the OS page cache cannot be dropped here, so 'first read' is a freshly opened array "
          "reading chunks the OS may still cache (decompression is still paid).")
    if args.root is not None:
        result = time_reads(args.root, args.patch, args.repeats)
        print(f"{args.root}: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in result.items()))
        return
    for chunk in args.chunks:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            write_full_tomogram(Path(tmp), chunk, simulator_writer=args.simulator_writer)
            written = time.perf_counter() - t0
            result = time_reads(Path(tmp), args.patch, args.repeats)
            size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 2 ** 20
        label = "simulator writer" if args.simulator_writer else f"chunks {chunk}^3"
        print(f"{label} ({size:.0f} MiB on disk, written in {written:.1f} s): "
              + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in result.items()))


if __name__ == "__main__":
    main()
