"""What ``simulate.py`` owns in its ``--out`` folder, and what a new dataset will cost.

A marker file lists the parts a simulated dataset consists of; it is written before any part, so that
``--overwrite`` deletes exactly those parts of a dataset (even one whose simulation was killed half-way) and
nothing else: a folder without the marker (anybody's data, a dataset from before the marker) is never
emptied. Memory and disk are checked before anything is deleted, so a size the machine cannot hold fails
while the old dataset is still whole.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from runtime.atomic import write_text_atomic
from runtime.bounded_reads import read_json
from dataio.layout import COPICK_CONFIG_NAME, TEST_COPICK_CONFIG_NAME, TEST_TRUTH_DIR, check_path_name

MARKER_NAME = ".czii-picker-dataset.json"
CREATED_BY = "czii-picker simulate.py"
DATASET_PARTS: tuple[str, ...] = ("train", "test", TEST_TRUTH_DIR, COPICK_CONFIG_NAME, TEST_COPICK_CONFIG_NAME,
                                  "folds.yaml", "difficulty.json")
PEAK_BYTES_PER_VOXEL = 64
"""The simulator's peak memory per voxel of one tomogram (measured: about 52 B, 2026-12-06, at 96x256x256)."""
BASE_MEMORY_BYTES = 400 * 2**20
"""Python, numpy, scipy and zarr themselves."""
DISK_BYTES_PER_VOXEL = 4.6
"""A stored tomogram with its two coarser levels, blosc-compressed float32 (measured: 4.3 B per voxel)."""


def write_marker(out: Path) -> Path:
    """Claim ``out``'s dataset parts for simulate.py, before any of them is written."""
    doc = {"created_by": CREATED_BY, "parts": list(DATASET_PARTS)}
    return write_text_atomic(Path(out) / MARKER_NAME, json.dumps(doc, indent=2) + "\n")


def owned_parts(out: Path) -> list[str] | None:
    """The parts simulate.py wrote in ``out`` (from its marker); None when ``out`` has no marker of ours."""
    marker = Path(out) / MARKER_NAME
    if not marker.exists() and not marker.is_symlink():
        return None
    doc = read_json(marker, "dataset marker")
    if not isinstance(doc, dict) or doc.get("created_by") != CREATED_BY or not isinstance(doc.get("parts"), list):
        raise ValueError(f"{marker} is not a marker simulate.py wrote; refusing to delete anything in {out}")
    return [check_path_name(part, f"{marker}: part") for part in doc["parts"]]


def clear_dataset(out: Path) -> list[Path]:
    """Delete the parts of the simulated dataset in ``out`` that its marker names (a symbolic link is removed,
    never followed), then the marker; everything else in ``out`` stays. Refuses a folder without our marker."""
    out = Path(out)
    parts = owned_parts(out)
    if parts is None:
        raise FileExistsError(f"--overwrite: {out} has no {MARKER_NAME} saying simulate.py wrote a dataset there "
                              "(someone else's files, or a dataset from an older version); refusing to delete "
                              "anything: empty it yourself or choose another --out")
    removed = []
    for part in [*parts, MARKER_NAME]:
        path = out / part
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        else:
            continue
        removed.append(path)
    return removed


def _tree_bytes(path: Path) -> int:
    if path.is_symlink() or not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_budget(out: Path, shape: tuple[int, int, int], n_runs: int, n_types: int,
                 memory: int | None = None) -> None:
    """Refuse, before anything is deleted, a dataset whose one tomogram needs more memory than is available, or
    whose files need more disk than is free (counting the old dataset's parts that would be replaced)."""
    voxels = shape[0] * shape[1] * shape[2]
    need_memory = voxels * PEAK_BYTES_PER_VOXEL * n_types + BASE_MEMORY_BYTES
    memory = available_memory() if memory is None else memory
    if memory is not None and need_memory > memory:
        raise ValueError(f"--size {'x'.join(map(str, shape))}: simulating one tomogram needs about "
                         f"{need_memory / 2**30:,.1f} GiB of memory and {memory / 2**30:,.1f} GiB are available; "
                         "choose a smaller --size (nothing was deleted)")
    need_disk = int(voxels * DISK_BYTES_PER_VOXEL * n_runs * n_types)
    folder = Path(out)
    while not folder.exists():
        folder = folder.parent
    freed = sum(_tree_bytes(Path(out) / part) for part in (owned_parts(Path(out)) or [])) if Path(out).is_dir() else 0
    free = shutil.disk_usage(folder).free + freed
    if need_disk > free:
        raise ValueError(f"--out {out}: the dataset needs about {need_disk / 2**30:,.1f} GiB of disk and "
                         f"{free / 2**30:,.1f} GiB are free there; free space, write elsewhere or simulate fewer "
                         "or smaller runs (nothing was deleted)")
