"""Writers for picks: the submission CSV and copick pick JSON files, both written atomically."""
from __future__ import annotations

import getpass
import json
import os
import socket
from pathlib import Path

import numpy as np
import pandas as pd

from runtime.bounded_reads import MAX_PICKS_BYTES, read_json
from dataio.layout import TRUTH_SESSION, TRUTH_USER, check_path_name, pick_file
from dataio.pick_readers import PICK_COLUMNS
from particles import ParticleSet
from runtime.atomic import OutputBatch, atomic_path, check_writable, write_text_atomic

WRITER_TAG = "czii-picker"
"""Stamped into every pick file this project writes (``written_by``); copick ignores the key. A file without it
was written by someone else (a curator, another tool, copick itself) and is never replaced."""
DEFAULT_PICKS_USER = "czii-picker"


def writer_identity() -> str:
    """Who writes a pick file (``<login>@<host>``, stamped as ``written_for``): two people writing the same
    recipe's picks (same copick user and session) into one overlay never replace each other's files."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        login = f"uid{os.getuid()}"
    return f"{login}@{socket.gethostname()}"
_IDENTITY = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]


def write_submission(picks: pd.DataFrame, path: str | Path, batch: OutputBatch | None = None,
                     *, particles: ParticleSet) -> Path:
    """Write ``id,experiment,particle_type,x,y,z`` (Å), ids 0..n-1, sorted by run and class."""
    missing = [c for c in PICK_COLUMNS if c not in picks.columns]
    if missing:
        raise ValueError(f"picks table lacks columns {missing}; has {list(picks.columns)}")
    for name in picks["particle_type"].unique():
        particles.get(name)
    table = picks.loc[:, list(PICK_COLUMNS)].sort_values(["experiment", "particle_type", "z", "y", "x"],
                                                         kind="stable").reset_index(drop=True)
    table.insert(0, "id", np.arange(len(table)))
    with atomic_path(path, suffix=".csv", batch=batch) as tmp:
        table.to_csv(tmp, index=False, float_format="%.3f")
    return Path(path)


def pick_json(run: str, particle_name: str, xyz_angstrom: np.ndarray, user_id: str = TRUTH_USER,
              session_id: str = TRUTH_SESSION, voxel_spacing: float | None = None) -> dict:
    """The copick pick-file document for one run and class (points in Å)."""
    check_path_name(particle_name, "copick object name")
    points = [{"location": {"x": float(x), "y": float(y), "z": float(z)},
               "transformation_": _IDENTITY, "instance_id": 0, "score": 1.0}
              for x, y, z in np.asarray(xyz_angstrom, dtype=np.float64).reshape(-1, 3)]
    return {"pickable_object_name": particle_name, "user_id": user_id, "session_id": session_id,
            "run_name": run, "voxel_spacing": voxel_spacing, "unit": "angstrom", "points": points,
            "trust_orientation": True, "written_by": WRITER_TAG, "written_for": writer_identity()}


def check_replaceable(target: Path, overlay_root: Path | None = None) -> None:
    """Refuse to replace a file this project did not write: curated truth and others' picks are sacred; and
    refuse a symbolic link anywhere below ``overlay_root`` on the way to it, which would write elsewhere."""
    if overlay_root is not None:
        inside = target.relative_to(overlay_root)
        for depth in range(1, len(inside.parts) + 1):
            step = overlay_root.joinpath(*inside.parts[:depth])
            if step.is_symlink():
                raise FileExistsError(f"{step} is a symbolic link inside the overlay {overlay_root}; refusing to "
                                      f"write {target} through it")
    if not target.exists():
        return
    try:
        doc = read_json(target, "pick file", MAX_PICKS_BYTES)
    except (OSError, ValueError):
        doc = None
    if not isinstance(doc, dict) or doc.get("written_by") != WRITER_TAG:
        raise FileExistsError(f"{target} exists and was not written by {WRITER_TAG} (curated or another "
                              f"user's picks); refusing to replace it: choose another user or session id "
                              f"or another overlay folder")
    owner = doc.get("written_for")
    if owner is not None and owner != writer_identity():
        raise FileExistsError(f"{target} was written by {WRITER_TAG} for {owner}, not for {writer_identity()}; "
                              "refusing to replace someone else's picks: give your own --session-id (or "
                              "--user-id), or another overlay folder")


def write_pick_json(overlay_root: str | Path, run: str, particle_name: str, xyz_angstrom: np.ndarray,
                    user_id: str, session_id: str, voxel_spacing: float | None = None,
                    batch: OutputBatch | None = None) -> Path:
    """Write ``<overlay_root>/ExperimentRuns/<run>/Picks/<user>_<session>_<particle>.json`` atomically."""
    target = pick_file(Path(overlay_root), run, particle_name, user_id, session_id)
    check_replaceable(target, Path(overlay_root))
    doc = pick_json(run, particle_name, xyz_angstrom, user_id, session_id, voxel_spacing)
    return write_text_atomic(target, json.dumps(doc), batch=batch)


def check_copick_targets(overlay_root: str | Path, runs: list[str], user_id: str, session_id: str,
                         *, particles: ParticleSet) -> None:
    """Every pick file ``write_copick_picks`` would write may be replaced (callers check before long work)."""
    overlay_root = Path(overlay_root)
    if overlay_root.exists() and not overlay_root.is_dir():
        raise FileExistsError(f"copick overlay {overlay_root} is a file, not a folder")
    for run in runs:
        for name in particles.names:
            check_replaceable(pick_file(overlay_root, run, name, user_id, session_id), overlay_root)
    check_writable(pick_file(overlay_root, runs[0], particles.names[0], user_id, session_id) if runs else
                   overlay_root / "probe", "copick overlay")


def write_copick_picks(picks: pd.DataFrame, overlay_root: str | Path, runs: list[str] | None = None,
                       user_id: str = DEFAULT_PICKS_USER, session_id: str = "0",
                       voxel_spacing: float | None = None, batch: OutputBatch | None = None,
                       *, particles: ParticleSet) -> list[Path]:
    """Write one pick JSON per run and class (empty classes too, so viewers see zero picks). Every target is
    checked before the first is written, so a refusal leaves the overlay as it was; with ``batch`` they
    appear only when the batch commits."""
    runs = sorted(picks["experiment"].unique()) if runs is None else runs
    check_copick_targets(overlay_root, runs, user_id, session_id, particles=particles)
    written = []
    for run in runs:
        in_run = picks[picks["experiment"] == run]
        for name in particles.names:
            xyz = in_run.loc[in_run["particle_type"] == name, ["x", "y", "z"]].to_numpy()
            written.append(write_pick_json(overlay_root, run, name, xyz, user_id, session_id, voxel_spacing,
                                           batch))
    return written


def write_picks_table(picks: pd.DataFrame, path: str | Path) -> Path:
    """Write a picks table (with ``score`` if present) as CSV atomically; e.g. OOF candidates. Numbers are
    written exactly (the shortest repr that reads back to the same float with ``read_picks_table``), so the
    thresholds saved beside them select exactly the picks they were fitted on."""
    missing = [c for c in PICK_COLUMNS if c not in picks.columns]
    if missing:
        raise ValueError(f"picks table lacks columns {missing}; has {list(picks.columns)}")
    with atomic_path(path, suffix=".csv") as tmp:
        picks.to_csv(tmp, index=False)
    return Path(path)


def read_picks_table(path: str | Path) -> pd.DataFrame:
    """A table ``write_picks_table`` wrote, every number as it was (pandas' default parser is not exact)."""
    return pd.read_csv(path, float_precision="round_trip")
