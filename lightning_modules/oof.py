"""Out-of-fold predictions of a recipe's folds: each fold's model on its own held-out runs."""
from __future__ import annotations

import pandas as pd
import torch

from datamodules.datamodule import resolve_folds_file
from datamodules.folds import load_folds, split_runs
from datamodules.sources import TomogramSource, open_source
from lightning_modules.checkpoints import FoldRun, load_model
from lightning_modules.fold_validation import OOF_CANDIDATES
from particles import PARTICLE_NAMES
from postprocess.ensemble_predict import EnsembleSettings, predict_run


def held_out(run: FoldRun) -> tuple[TomogramSource, list[str]]:
    """The fold's data source and its held-out (validation) runs, from the fold's own config and folds file."""
    data = run.config.data
    source = open_source(data.data_root, data.split, data.tomo_type, data.level, data.picks_csv)
    _, val_runs = split_runs(load_folds(resolve_folds_file(data.folds_file), source.run_names()), data.fold)
    return source, val_runs


def predict_oof(runs: list[FoldRun], settings: EnsembleSettings,
                device: torch.device | str = "cpu") -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(candidates, ground truth, held-out runs) with each fold's model predicting its held-out runs under
    ``settings``: out-of-fold predictions made exactly as the ensemble will predict (TTA, NMS, window)."""
    candidates, truths, names = [], [], []
    floor = {n: settings.candidate_threshold for n in PARTICLE_NAMES}
    for run in runs:
        source, val_runs = held_out(run)
        model = load_model(run, device)
        for name in val_runs:
            candidates.append(predict_run([model], source.load_tomogram(name), name, settings, floor,
                                          torch.device(device)))
            truths.append(source.picks(name))
            names.append(name)
    if not names:
        raise ValueError("no fold has held-out runs (fold -1 trains on everything): nothing to predict out of fold")
    return pd.concat(candidates, ignore_index=True), pd.concat(truths, ignore_index=True), sorted(names)


def collect_oof(runs: list[FoldRun]) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(candidates with score, ground truth, held-out run names) over every fold that validated.

    Held-out runs come from folds.yaml, so a fold whose model found nothing still counts its misses.
    """
    candidates, truths, held_out_runs = [], [], []
    for run in runs:
        path = None if run.run_dir is None else run.run_dir / OOF_CANDIDATES
        if path is None or not path.is_file():
            continue  # fold -1 trains on everything: no held-out run
        table = pd.read_csv(path)
        if "score" not in table.columns:
            raise ValueError(f"{path} has no score column: not written by train.py")
        source, val_runs = held_out(run)
        candidates.append(table)
        truths.extend(source.picks(r) for r in val_runs)
        held_out_runs.extend(val_runs)
    if not candidates:
        raise FileNotFoundError(f"no fold run holds {OOF_CANDIDATES}: train folds with validation "
                                "(not only --fold -1) to fit thresholds out of fold")
    return pd.concat(candidates, ignore_index=True), pd.concat(truths, ignore_index=True), sorted(held_out_runs)
