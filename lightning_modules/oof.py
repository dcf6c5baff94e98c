"""Out-of-fold predictions of a recipe's folds: each fold's model on its own held-out runs."""
from __future__ import annotations

import pandas as pd

from datamodules.datamodule import resolve_folds_file
from datamodules.folds import load_folds, split_runs
from datamodules.sources import open_source
from lightning_modules.checkpoints import FoldRun
from lightning_modules.fold_validation import OOF_CANDIDATES


def collect_oof(runs: list[FoldRun]) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(candidates with score, ground truth, held-out run names) over every fold that validated.

    Held-out runs come from folds.yaml, so a fold whose model found nothing still counts its misses.
    """
    candidates, truths, held_out = [], [], []
    for run in runs:
        path = None if run.run_dir is None else run.run_dir / OOF_CANDIDATES
        if path is None or not path.is_file():
            continue  # fold -1 trains on everything: no held-out run
        table = pd.read_csv(path)
        if "score" not in table.columns:
            raise ValueError(f"{path} has no score column: not written by train.py")
        data = run.config.data
        source = open_source(data.data_root, data.split, data.tomo_type, data.level, data.picks_csv)
        _, val_runs = split_runs(load_folds(resolve_folds_file(data.folds_file), source.run_names()), data.fold)
        candidates.append(table)
        truths.extend(source.picks(r) for r in val_runs)
        held_out.extend(val_runs)
    if not candidates:
        raise FileNotFoundError(f"no fold run holds {OOF_CANDIDATES}: train folds with validation "
                                "(not only --fold -1) to fit thresholds out of fold")
    return pd.concat(candidates, ignore_index=True), pd.concat(truths, ignore_index=True), sorted(held_out)
