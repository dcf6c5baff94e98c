"""Writers for picks: the submission CSV and copick pick JSON files, both written atomically."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from datamodules.layout import pick_file
from datamodules.pick_readers import PICK_COLUMNS
from particles import PARTICLE_NAMES, particle
from postprocess.atomic import atomic_path, write_text_atomic

SUBMISSION_COLUMNS: tuple[str, ...] = ("id", *PICK_COLUMNS)
_IDENTITY = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]


def write_submission(picks: pd.DataFrame, path: str | Path) -> Path:
    """Write ``id,experiment,particle_type,x,y,z`` (Å), ids 0..n-1, sorted by run and class."""
    missing = [c for c in PICK_COLUMNS if c not in picks.columns]
    if missing:
        raise ValueError(f"picks table lacks columns {missing}; has {list(picks.columns)}")
    for name in picks["particle_type"].unique():
        particle(name)
    table = picks.loc[:, list(PICK_COLUMNS)].sort_values(["experiment", "particle_type", "z", "y", "x"],
                                                         kind="stable").reset_index(drop=True)
    table.insert(0, "id", np.arange(len(table)))
    with atomic_path(path, suffix=".csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.3f")
    return Path(path)


def pick_json(run: str, particle_name: str, xyz_angstrom: np.ndarray,
              user_id: str = "czii-picker", session_id: str = "0") -> dict:
    """The copick pick-file document for one run and class (points in Å)."""
    particle(particle_name)
    points = [{"location": {"x": float(x), "y": float(y), "z": float(z)},
               "transformation_": _IDENTITY, "instance_id": 0}
              for x, y, z in np.asarray(xyz_angstrom, dtype=np.float64).reshape(-1, 3)]
    return {"pickable_object_name": particle_name, "user_id": user_id, "session_id": session_id,
            "run_name": run, "voxel_spacing": None, "unit": "angstrom", "points": points,
            "trust_orientation": True}


def write_pick_json(overlay_root: str | Path, run: str, particle_name: str, xyz_angstrom: np.ndarray,
                    user_id: str = "czii-picker", session_id: str = "0") -> Path:
    """Write ``<overlay_root>/ExperimentRuns/<run>/Picks/<particle>.json`` atomically."""
    target = pick_file(Path(overlay_root), run, particle_name)
    doc = pick_json(run, particle_name, xyz_angstrom, user_id, session_id)
    return write_text_atomic(target, json.dumps(doc))


def write_copick_picks(picks: pd.DataFrame, overlay_root: str | Path, runs: list[str] | None = None,
                       user_id: str = "czii-picker", session_id: str = "0") -> list[Path]:
    """Write one pick JSON per run and class (empty classes too, so viewers see zero picks)."""
    runs = sorted(picks["experiment"].unique()) if runs is None else runs
    written = []
    for run in runs:
        in_run = picks[picks["experiment"] == run]
        for name in PARTICLE_NAMES:
            xyz = in_run.loc[in_run["particle_type"] == name, ["x", "y", "z"]].to_numpy()
            written.append(write_pick_json(overlay_root, run, name, xyz, user_id, session_id))
    return written


def write_picks_table(picks: pd.DataFrame, path: str | Path) -> Path:
    """Write a picks table (with ``score`` if present) as CSV atomically; e.g. OOF candidates."""
    missing = [c for c in PICK_COLUMNS if c not in picks.columns]
    if missing:
        raise ValueError(f"picks table lacks columns {missing}; has {list(picks.columns)}")
    with atomic_path(path, suffix=".csv") as tmp:
        picks.to_csv(tmp, index=False, float_format="%.4f")
    return Path(path)
