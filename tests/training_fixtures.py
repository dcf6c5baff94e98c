"""Tiny datasets and configs for the training tests: CPU only, seconds per run."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from dataio.layout import tomogram_path, train_overlay_root
from particles import PARTICLE_NAMES
from dataio.layout import TRUTH_SESSION, TRUTH_USER
from dataio.pick_writers import write_pick_json
from simulation.difficulty import ImagingConfig, resolve_snr
from simulation.imaging import ImagingParams
from simulation.tomogram import simulate_run
from dataio.zarr_writer import write_multiscale_zarr

TWIN_RUNS: tuple[str, str] = ("TS_A", "TS_B")


def write_folds(path: Path, folds: dict[int, list[str]]) -> Path:
    """A folds.yaml (fold -> validation runs) for ``data.folds_file``."""
    path.write_text(yaml.safe_dump({"folds": {int(k): list(v) for k, v in folds.items()}}))
    return path


def twin_dataset(root: Path, shape: tuple[int, int, int], seed: int = 0,
                 difficulty: str = "easy") -> tuple[Path, Path, pd.DataFrame]:
    """One simulated tomogram and its picks under two run names, and folds {0: [TS_A], 1: [TS_B]}.

    Training fold 0 trains on TS_B and validates on TS_A: the same data, so a model can overfit it.
    """
    simulated = simulate_run(shape, np.random.default_rng(seed), ImagingConfig(snr=resolve_snr(difficulty)))
    volumes, picks = simulated.volumes, simulated.picks
    for run in TWIN_RUNS:
        write_multiscale_zarr(tomogram_path(root, "train", run), volumes["denoised"])
        for name in PARTICLE_NAMES:
            xyz = picks.loc[picks["particle_type"] == name, ["x", "y", "z"]].to_numpy()
            write_pick_json(train_overlay_root(root), run, name, xyz, TRUTH_USER, TRUTH_SESSION)
    folds = write_folds(root / "folds.yaml", {0: [TWIN_RUNS[0]], 1: [TWIN_RUNS[1]]})
    return root, folds, picks


def tiny_overrides(data_root: Path, folds_file: Path | str = "folds.yaml", fold: int | str = 0,
                   patch: int = 32, steps: int = 2, **extra: Any) -> dict[str, Any]:
    """Nested overrides for a unet-tiny run of ``steps`` optimiser steps in one epoch.

    ``extra`` sections (dicts) are laid over the defaults key by key; top-level values (``seed``) are set.
    """
    cfg: dict[str, Any] = {
        "model": {"name": "unet-tiny", "widths": [8, 16, 32], "output_stride": 2},
        "data": {"data_root": str(data_root), "folds_file": str(folds_file), "fold": fold,
                 "patch_size": [patch] * 3, "batch_size": 1, "num_workers": 0, "patches_per_epoch": steps},
        "inference": {"window": [32, 64, 64], "batch_size": 1},
        "validation": {"picture": False},
        "trainer": {"accelerator": "cpu", "devices": "1", "precision": "32", "max_epochs": 1,
                    "max_steps": -1, "log_every_n_steps": 1, "check_val_every_n_epoch": 1},
        "logging": {"wandb": False},
    }
    for key, value in extra.items():
        if isinstance(value, dict):
            cfg.setdefault(key, {}).update(value)
        else:
            cfg[key] = value
    return cfg


def cli_args(overrides: dict[str, Any]) -> list[str]:
    """The same nested overrides as ``--section.key value`` flags for ``train.main``."""
    shortcuts = {"data.fold": "--fold", "data.data_root": "--data"}
    args: list[str] = []
    leaves = [(f"--{key}", value) for key, value in overrides.items() if not isinstance(value, dict)]
    leaves += [(shortcuts.get(f"{section}.{key}", f"--{section}.{key}"), value)
               for section, values in overrides.items() if isinstance(values, dict)
               for key, value in values.items()]
    for flag, value in leaves:
        if isinstance(value, dict):
            raise ValueError(f"{flag}: nested mappings have no command-line form")
        if isinstance(value, (list, tuple)):
            args += [flag, *[str(v) for v in value]]
        else:
            args += [flag, "null" if value is None else str(value)]
    return args


def fixed_imaging(snr: float) -> ImagingConfig:
    """No randomisation: every run at exactly this SNR with the default physics (for tests and figures)."""
    p = ImagingParams(snr=snr)
    return ImagingConfig(snr=snr, snr_spread=0.0, defocus_um=(p.defocus / 1e4,) * 2, bfactor=(p.bfactor,) * 2,
                         phase_flip_prob=float(p.phase_flip), max_tilt_deg=(p.max_tilt_deg,) * 2,
                         lowpass_fraction=(p.lowpass_fraction,) * 2, noise_exponent=(p.noise_exponent,) * 2)


def recomputed_validation_score(run_dir: Path, data_root: Path) -> float:
    """The official metric of a run's saved OOF candidates at its saved thresholds against the held-out runs'
    truth, recomputed from its files: what its ``val_metrics.json`` must say."""
    import json

    from dataio.pick_writers import read_picks_table
    from dataio.sources import open_source
    from inference.run_folder import RunFolder
    from postprocess.class_suppression import select_picks
    from postprocess.metric import score_picks

    folder = RunFolder(run_dir)
    cfg, split = folder.read_config(), folder.read_split()
    particles = cfg.particle_set
    candidates = read_picks_table(folder.oof_candidates)
    thresholds = json.loads(folder.val_metrics.read_text())["thresholds"]
    source = open_source(data_root, particles=particles)
    truth = pd.concat([source.picks(r) for r in split.val_runs], ignore_index=True)
    picks = select_picks(candidates, thresholds, cfg.inference.class_suppression, particles=particles)
    return score_picks(picks, truth, runs=split.val_runs, particles=particles).score
