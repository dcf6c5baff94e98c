"""A whole synthetic CZII dataset in the copick layout: train runs with picks, test runs, config JSON."""
from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from datamodules.layout import (COPICK_CONFIG_NAME, TRAIN_RUNS, static_runs_dir, truth_overlay_root,
                                tomogram_path, train_overlay_root)
from particles import FULL_SHAPE_ZYX, PARTICLE_NAMES, PARTICLES
from postprocess.atomic import write_text_atomic
from postprocess.writers import write_pick_json
from simulation.templates import TemplateSet, load_templates
from simulation.tomogram import Templates, simulate_run
from simulation.zarr_writer import write_multiscale_zarr

DEMO_SHAPE: tuple[int, int, int] = (96, 256, 256)
"""Demo tomogram size: ~1 s per run on 2 cores, with realistic crowding (counts scale with ice volume)."""

SIZES: dict[str, tuple[int, int, int]] = {"demo": DEMO_SHAPE, "full": FULL_SHAPE_ZYX}
PICK_USER = "curation"


def resolve_size(size: str | tuple[int, int, int] | list[int]) -> tuple[int, int, int]:
    """``"demo"``, ``"full"``, ``"Z,Y,X"`` or a (z, y, x) tuple -> shape."""
    if isinstance(size, str):
        if size in SIZES:
            return SIZES[size]
        try:
            size = tuple(int(s) for s in size.replace("x", ",").split(","))
        except ValueError:
            raise ValueError(f"size {size!r}: expected demo, full or Z,Y,X") from None
    shape = tuple(int(s) for s in size)
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"size {size!r}: expected three sizes >= 8 (z, y, x)")
    return shape


def simulated_test_runs(n_test: int) -> list[str]:
    """Names of the simulated test runs: TS_sim_test_0 .. TS_sim_test_{n-1}."""
    return [f"TS_sim_test_{i}" for i in range(n_test)]


def run_rng(seed: int, run: str) -> np.random.Generator:
    """Per-run generator from (seed, run name), so runs differ and each is reproducible on its own."""
    return np.random.default_rng([int(seed), zlib.crc32(run.encode())])


def copick_config(out: Path) -> dict:
    """The copick config document (pickable objects and the train overlay/static roots)."""
    objects = [{"name": p.name, "is_particle": True, "pdb_id": p.pdb_id, "label": p.label,
                "radius": p.radius} for p in PARTICLES]
    return {"name": "czii_synthetic", "description": "Synthetic CZII CryoET object identification data.",
            "version": "1.0.0", "pickable_objects": objects,
            "overlay_root": str(train_overlay_root(out).resolve()), "overlay_fs_args": {"auto_mkdir": True},
            "static_root": str(static_runs_dir(out, "train").parent.resolve())}


def write_run_picks(overlay_root: Path, run: str, picks: pd.DataFrame) -> None:
    """One copick pick JSON per class (empty classes too), user ``curation``."""
    for name in PARTICLE_NAMES:
        xyz = picks.loc[picks["particle_type"] == name, ["x", "y", "z"]].to_numpy()
        write_pick_json(overlay_root, run, name, xyz, user_id=PICK_USER)


def simulate_dataset(out: str | Path, size: str | tuple[int, int, int] = "demo", seed: int = 0,
                     noise: float = 1.0, templates: Templates = None, n_test: int = 3,
                     tomo_types: tuple[str, ...] = ("denoised",), progress: bool = False) -> Path:
    """Write 7 train runs (with picks), ``n_test`` test runs (truth under test_truth) and the config."""
    out = Path(out)
    shape = resolve_size(size)
    if n_test < 0:
        raise ValueError(f"n_test must be >= 0, got {n_test}")
    template_set: TemplateSet | None = (templates if templates is None or isinstance(templates, TemplateSet)
                                        else load_templates(templates))
    runs = [("train", r) for r in TRAIN_RUNS] + [("test", r) for r in simulated_test_runs(n_test)]
    for split, run in tqdm(runs, desc="simulating runs", disable=not progress):
        volumes, picks, _ = simulate_run(shape, run_rng(seed, run), noise, template_set, tuple(tomo_types))
        for tomo_type, volume in volumes.items():
            write_multiscale_zarr(tomogram_path(out, split, run, tomo_type), volume)
        overlay = train_overlay_root(out) if split == "train" else truth_overlay_root(out)
        write_run_picks(overlay, run, picks)
    write_text_atomic(out / COPICK_CONFIG_NAME, json.dumps(copick_config(out), indent=2))
    return out
