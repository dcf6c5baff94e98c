"""The ensemble's W&B run: what recipes are compared by (the out-of-fold CV), next to the folds' training runs.

One run of job type ``ensemble`` in the experiment's group: summary numbers ``oof/score``,
``oof/{f4,precision,recall}/<class>``, ``threshold/<class>``, ``<split>/score`` (and per class) when the
split has ground truth; a table ``oof_pr_curves`` (class, threshold, precision, recall, F4: a line plot per
class in the dashboard); the pictures as images. A sweep optimises ``oof/score``.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from runtime.wandb_runs import start_run
from particles import ParticleSet
from postprocess.thresholds import precision_recall_curve

ENSEMBLE_JOB = "ensemble"
OBJECTIVE = "oof/score"
"""The summary key a sweep maximises: the out-of-fold CV of the ensemble with its fitted thresholds."""


def pr_curve_rows(candidates: pd.DataFrame, truth: pd.DataFrame, particles: ParticleSet) -> pd.DataFrame:
    """Every class's precision-recall curve over the candidate scores, stacked (column ``class``)."""
    curves = [precision_recall_curve(candidates, truth, name, particles=particles).assign(**{"class": name})
              for name in particles.names]
    table = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    return table.loc[:, ["class", "threshold", "precision", "recall", "f4"]] if len(table) else table


def log_ensemble_run(*, project: str, entity: str | None, group: str, name: str, config: Mapping[str, Any],
                     directory: Path, scores: Mapping[str, float], thresholds: Mapping[str, float],
                     pr_curves: pd.DataFrame | None, pictures: list[Path]) -> str | None:
    """Log one finished ensemble to W&B; returns the run's folder on disk (None when W&B is disabled)."""
    run = start_run(project=project, entity=entity, group=group, name=name, job_type=ENSEMBLE_JOB,
                    config=config, directory=directory)
    if run is None:
        return None
    import wandb

    try:
        run.summary.update({**scores, **{f"threshold/{k}": float(v) for k, v in thresholds.items()}})
        logged: dict[str, Any] = {}
        if pr_curves is not None and len(pr_curves):
            logged["oof_pr_curves"] = wandb.Table(dataframe=pr_curves)
        for png in pictures:
            logged[f"pictures/{png.stem}"] = wandb.Image(str(png))
        if logged:
            run.log(logged)
        return str(run.dir)
    finally:
        run.finish()
