"""Read picks (copick JSON, CSV) into checked picks tables, so bad files fail loudly and early."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from datamodules.layout import overlay_runs_dir, picks_dir
from particles import PARTICLE_NAMES

PICK_COLUMNS: tuple[str, ...] = ("experiment", "particle_type", "x", "y", "z")
_REQUIRED_KEYS: tuple[str, ...] = ("pickable_object_name", "unit", "points")


def empty_picks_table() -> pd.DataFrame:
    """A picks table with no rows but the right columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("experiment", "particle_type") else float)
                         for c in PICK_COLUMNS})


def validate_picks(table: pd.DataFrame, where: str) -> pd.DataFrame:
    """Check columns, numeric finite coordinates and known particle names; return a clean copy."""
    missing = [c for c in PICK_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing}; has {list(table.columns)}")
    out = table.copy()
    for c in ("x", "y", "z") + (("score",) if "score" in out.columns else ()):
        values = pd.to_numeric(out[c], errors="coerce")
        bad = values.isna() & out[c].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(f"{where}: column {c!r} is not numeric (row {row}: {out[c].iloc[row]!r})")
        if not np.isfinite(values.to_numpy(dtype=np.float64)).all():
            row = int(np.flatnonzero(~np.isfinite(values.to_numpy(dtype=np.float64)))[0])
            raise ValueError(f"{where}: column {c!r} has a missing or non-finite value (row {row})")
        out[c] = values.astype(np.float64)
    for c in ("experiment", "particle_type"):
        if out[c].isna().any():
            row = int(np.flatnonzero(out[c].isna().to_numpy())[0])
            raise ValueError(f"{where}: column {c!r} is empty at row {row}")
        out[c] = out[c].astype(str).astype(object)
    unknown = sorted(set(out["particle_type"].unique()) - set(PARTICLE_NAMES))
    if unknown:
        raise ValueError(f"{where}: unknown particle types {unknown}; known: {', '.join(PARTICLE_NAMES)}")
    return out.reset_index(drop=True)


def read_picks_csv(path: str | Path) -> pd.DataFrame:
    """Read a CSV of picks (experiment, particle_type, x, y, z in Å; extra columns kept, e.g. id)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"picks CSV not found: {path}")
    try:
        table = pd.read_csv(path, dtype={"experiment": str, "particle_type": str})
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable CSV ({err})") from None
    return validate_picks(table, str(path))


def _run_from_path(path: Path) -> str | None:
    """``.../ExperimentRuns/<run>/Picks/<file>.json`` -> ``<run>``; None elsewhere."""
    return path.parent.parent.name if path.parent.name == "Picks" else None


def _points_xyz(points: object, path: Path) -> np.ndarray:
    """The ``[N, 3]`` x, y, z (Å) of a copick ``points`` list, with the offending point named on error."""
    if not isinstance(points, list):
        raise ValueError(f"{path}: 'points' must be a list, got {type(points).__name__}")
    try:
        xyz = np.array([[p["location"]["x"], p["location"]["y"], p["location"]["z"]] for p in points],
                       dtype=np.float64).reshape(-1, 3)
    except (KeyError, TypeError, ValueError):
        for i, p in enumerate(points):
            loc = p.get("location") if isinstance(p, dict) else None
            if not isinstance(loc, dict) or any(k not in loc for k in "xyz"):
                raise ValueError(f"{path}: point {i} lacks location x, y, z: {p!r}") from None
            try:
                [float(loc[k]) for k in "xyz"]
            except (TypeError, ValueError):
                raise ValueError(f"{path}: point {i} has a non-numeric location: {loc!r}") from None
        raise
    if not np.isfinite(xyz).all():
        i = int(np.flatnonzero(~np.isfinite(xyz).all(axis=1))[0])
        raise ValueError(f"{path}: point {i} has a non-finite location")
    return xyz


def read_pick_json(path: str | Path) -> pd.DataFrame:
    """Read one copick pick file (unit Å) into a picks table; an empty points list gives zero rows."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pick file not found: {path}")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: malformed or truncated JSON ({err})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(doc).__name__}")
    missing = [k for k in _REQUIRED_KEYS if k not in doc]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    if doc["unit"] != "angstrom":
        raise ValueError(f"{path}: unit is {doc['unit']!r}; only 'angstrom' is supported")
    name = doc["pickable_object_name"]
    if name not in PARTICLE_NAMES:
        raise ValueError(f"{path}: unknown particle {name!r}; known: {', '.join(PARTICLE_NAMES)}")
    if path.stem != name and not path.stem.endswith(f"_{name}"):
        raise ValueError(f"{path}: file name does not match pickable_object_name {name!r}")
    path_run, doc_run = _run_from_path(path), doc.get("run_name")
    if doc_run is not None and path_run is not None and str(doc_run) != path_run:
        raise ValueError(f"{path}: run_name {doc_run!r} does not match its run folder {path_run!r}")
    run = str(doc_run) if doc_run is not None else path_run
    if run is None:
        raise ValueError(f"{path}: no run_name and not inside ExperimentRuns/<run>/Picks")
    xyz = _points_xyz(doc["points"], path)
    table = pd.DataFrame({"experiment": pd.Series([run] * len(xyz), dtype=object),
                          "particle_type": pd.Series([name] * len(xyz), dtype=object),
                          "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]})
    return table


def read_run_picks(overlay_root: str | Path, run: str) -> pd.DataFrame:
    """All pick files of one run in an overlay; a run folder without pick files gives zero rows."""
    run_dir = overlay_runs_dir(Path(overlay_root)) / run
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no picks for run {run!r}: {run_dir} does not exist")
    files = sorted(picks_dir(Path(overlay_root), run).glob("*.json"))
    tables = [read_pick_json(f) for f in files]
    tables = [t for t in tables if len(t)]
    if not tables:
        return empty_picks_table()
    return pd.concat(tables, ignore_index=True)


def overlay_run_names(overlay_root: str | Path) -> list[str]:
    """The runs (sorted) that have a folder in ``<overlay_root>/ExperimentRuns``."""
    runs_dir = overlay_runs_dir(Path(overlay_root))
    if not runs_dir.is_dir():
        raise FileNotFoundError(f"overlay has no ExperimentRuns folder: {runs_dir}")
    return sorted(p.name for p in runs_dir.iterdir() if p.is_dir())


def read_overlay(overlay_root: str | Path) -> pd.DataFrame:
    """Every run's picks in an overlay as one table; ``attrs['runs']`` lists all runs (even pick-less)."""
    runs = overlay_run_names(overlay_root)
    tables = [t for t in (read_run_picks(overlay_root, r) for r in runs) if len(t)]
    table = pd.concat(tables, ignore_index=True) if tables else empty_picks_table()
    table.attrs["runs"] = runs
    return table


def check_picks_in_volume(picks: pd.DataFrame, shape_zyx: tuple[int, ...], spacing: float,
                          where: str) -> None:
    """Refuse picks outside the volume; a pick may lie up to half a voxel beyond the outer centres."""
    if not len(picks):
        return
    index_xyz = picks[["x", "y", "z"]].to_numpy(dtype=np.float64) / spacing  # [N, 3] continuous x, y, z
    upper = np.array(shape_zyx[::-1], dtype=np.float64) - 0.5  # [3] x, y, z
    outside = ((index_xyz < -0.5 - 1e-6) | (index_xyz > upper + 1e-6)).any(axis=1)
    if outside.any():
        row = picks.iloc[int(np.flatnonzero(outside)[0])]
        extent = (upper * spacing).round(1).tolist()
        raise ValueError(f"{where}: {int(outside.sum())} picks lie outside the volume (x, y, z extent "
                         f"{-0.5 * spacing:.1f}..{extent} Å), e.g. {row['particle_type']} at "
                         f"({row['x']:.1f}, {row['y']:.1f}, {row['z']:.1f})")


def check_volume_array(array: object, where: str) -> None:
    """A tomogram must be a rank-3 real numeric array (shape [z, y, x])."""
    shape, dtype = getattr(array, "shape", None), np.dtype(getattr(array, "dtype", object))
    if shape is None or len(shape) != 3:
        raise ValueError(f"{where}: expected a 3D [z, y, x] array, got shape {shape}")
    if dtype == np.bool_ or not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise ValueError(f"{where}: expected a real numeric dtype, got {dtype}")


def load_volume(array: object, where: str) -> np.ndarray:
    """Read a whole lazy tomogram into float32 ``[z, y, x]``, refusing NaN or infinite voxels."""
    check_volume_array(array, where)
    volume = np.asarray(array[...], dtype=np.float32)
    finite = np.isfinite(volume)
    if not finite.all():
        raise ValueError(f"{where}: {int(volume.size - finite.sum())} non-finite voxels (NaN or inf)")
    return volume
