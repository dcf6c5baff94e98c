"""A whole synthetic CZII dataset in the copick layout: train runs with picks, test runs, config JSON."""
from __future__ import annotations

import json
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from runtime.atomic import write_text_atomic
from dataio.copick_config import write_copick_configs
from dataio.folds import folds_text, one_run_per_fold
from dataio.layout import TRAIN_RUNS, TRUTH_SESSION, TRUTH_USER, tomogram_path, train_overlay_root, truth_overlay_root
from dataio.pick_writers import write_copick_picks
from particles import CZII_PARTICLES, FULL_SHAPE_ZYX, VOXEL_SPACING, ParticleSet
from simulation.shapes import BUILTIN_SHAPES
from simulation.templates import TemplateSet, load_templates
from simulation.difficulty import ImagingConfig
from simulation.ownership import write_marker
from simulation.tomogram import SimulatedRun, Templates, simulate_run
from dataio.zarr_writer import write_multiscale_zarr

DEMO_SHAPE: tuple[int, int, int] = (96, 256, 256)
"""Demo tomogram size: ~1 s per run on 2 cores, with realistic crowding (counts scale with ice volume)."""

SIZES: dict[str, tuple[int, int, int]] = {"demo": DEMO_SHAPE, "full": FULL_SHAPE_ZYX}
DIFFICULTY_REPORT = "difficulty.json"
FOLDS_FILE_NAME = "folds.yaml"
"""Written beside every simulated dataset: one train run per fold (the CZII seven: the repository's folds)."""
DIFFICULTY_DEFINITION = ("snr: mean squared noise-free signal of the denoised tomogram over a class's particle "
                         "voxels / noise variance per voxel (after CTF, missing wedge, low-pass); cnr: mean "
                         "signal over those voxels / noise std (negative = darker than ice); null = "
                         "infinite (no noise)")


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


def simulated_train_runs(n_train: int | None) -> list[str]:
    """The train runs: the seven CZII run names by default, else TS_sim_train_0 .. (a pre-training set)."""
    if n_train is None:
        return list(TRAIN_RUNS)
    if n_train < 1:
        raise ValueError(f"n_train must be >= 1, got {n_train}")
    return [f"TS_sim_train_{i}" for i in range(n_train)]


def simulated_test_runs(n_test: int) -> list[str]:
    """Names of the simulated test runs: TS_sim_test_0 .. TS_sim_test_{n-1}."""
    return [f"TS_sim_test_{i}" for i in range(n_test)]


def run_rng(seed: int, run: str) -> np.random.Generator:
    """Per-run generator from (seed, run name), so runs differ and each is reproducible on its own."""
    return np.random.default_rng([int(seed), zlib.crc32(run.encode())])


def write_run_picks(overlay_root: Path, run: str, picks: pd.DataFrame,
                    particles: ParticleSet = CZII_PARTICLES) -> None:
    """One copick pick JSON per class (empty classes too), as curated truth: ``curation_0_<particle>.json``."""
    write_copick_picks(picks.assign(experiment=run), overlay_root, runs=[run], user_id=TRUTH_USER,
                       session_id=TRUTH_SESSION, voxel_spacing=VOXEL_SPACING, particles=particles)


def particle_models(template_set: TemplateSet | None, particles: ParticleSet = CZII_PARTICLES) -> dict[str, str]:
    """Which model each particle class is simulated with: a template map's name, the built-in shape, or an
    ellipsoid of its radius (classes of other sets without a map)."""
    found = template_set.particles if template_set is not None else {}
    return {name: f"template {found[name].name}" if name in found
            else "built-in shape" if name in BUILTIN_SHAPES else "ellipsoid of its radius"
            for name in particles.names}


def run_record(split: str, run: str, simulated: SimulatedRun, particles: ParticleSet = CZII_PARTICLES) -> dict:
    """One run's entry in ``difficulty.json``: its imaging, noise, counts and per-class SNR/CNR."""
    counts = simulated.picks["particle_type"].value_counts()
    return {"run": run, "split": split, "imaging": asdict(simulated.imaging), "noise_std": simulated.noise_std,
            "counts": {n: int(counts.get(n, 0)) for n in particles.names}, "classes": simulated.difficulty}


def summarise(records: list[dict], particles: ParticleSet = CZII_PARTICLES) -> dict[str, dict[str, float]]:
    """Per class over all runs: voxel-weighted SNR, mean CNR, and the particle count."""
    out = {}
    for name in particles.names:
        rows = [r["classes"][name] for r in records if name in r["classes"]]
        if not rows:
            continue
        voxels = np.array([row["voxels"] for row in rows], dtype=float)
        snr = float(np.average([row["snr"] for row in rows], weights=voxels))
        out[name] = {"snr": snr, "snr_db": float(10 * np.log10(snr)) if snr > 0 else float("-inf"),
                     "cnr": float(np.mean([row["cnr"] for row in rows])),
                     "particles": int(sum(r["counts"][name] for r in records))}
    return out


def _finite(value: object) -> object:
    """The report as strict JSON: infinite values (a noise-free run's SNR) become null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def simulate_dataset(out: str | Path, size: str | tuple[int, int, int] = "demo", seed: int = 0,
                     imaging: ImagingConfig | None = None, templates: Templates = None,
                     n_train: int | None = None, n_test: int = 3,
                     tomo_types: tuple[str, ...] = ("denoised",), progress: bool = False,
                     difficulty: str | None = None, particles: ParticleSet = CZII_PARTICLES) -> Path:
    """Write the train runs (with picks; the seven CZII names, or ``n_train`` generated ones), ``n_test`` test
    runs (truth under test_truth), the copick config, ``folds.yaml`` (one train run per fold) and
    ``difficulty.json`` (every run's imaging and per-class SNR). ``difficulty`` names the level for the
    record; ``imaging`` defaults to the realistic level; ``particles`` are the classes simulated (the copick
    configs declare them)."""
    out = Path(out)
    shape = resolve_size(size)
    if n_test < 0:
        raise ValueError(f"n_test must be >= 0, got {n_test}")
    imaging = imaging or ImagingConfig()
    template_set: TemplateSet | None = (templates if templates is None or isinstance(templates, TemplateSet)
                                        else load_templates(templates, particles))
    train_runs = simulated_train_runs(n_train)
    runs = [("train", r) for r in train_runs] + [("test", r) for r in simulated_test_runs(n_test)]
    write_marker(out)  # before any part: --overwrite may later delete exactly what this names
    records = []
    for split, run in tqdm(runs, desc="simulating runs", disable=not progress):
        simulated = simulate_run(shape, run_rng(seed, run), imaging, template_set, tuple(tomo_types),
                                 particles=particles)
        for tomo_type, volume in simulated.volumes.items():
            write_multiscale_zarr(tomogram_path(out, split, run, tomo_type), volume)
        overlay = train_overlay_root(out) if split == "train" else truth_overlay_root(out)
        write_run_picks(overlay, run, simulated.picks, particles)
        records.append(run_record(split, run, simulated, particles))
    write_copick_configs(out, name="czii_synthetic", particles=particles)
    write_text_atomic(out / FOLDS_FILE_NAME, folds_text(one_run_per_fold(train_runs)))
    report = {"difficulty": difficulty if difficulty is not None else imaging.snr, "seed": seed,
              "shape_zyx": list(shape), "imaging": asdict(imaging), "models": particle_models(template_set, particles),
              "definition": DIFFICULTY_DEFINITION, "classes": summarise(records, particles), "runs": records}
    write_text_atomic(out / DIFFICULTY_REPORT, json.dumps(_finite(report), indent=2, allow_nan=False) + "\n")
    return out
