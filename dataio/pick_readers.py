"""Read picks (copick JSON, CSV) into checked picks tables, so bad files fail loudly and early."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from runtime.bounded_reads import MAX_PICKS_BYTES, read_json
from dataio.layout import TRUTH_SESSION, TRUTH_USER, overlay_runs_dir, parse_pick_file_name, picks_dir
from particles import ParticleSet

PICK_COLUMNS: tuple[str, ...] = ("experiment", "particle_type", "x", "y", "z")
_REQUIRED_KEYS: tuple[str, ...] = ("pickable_object_name", "unit", "points")


def empty_picks_table() -> pd.DataFrame:
    """A picks table with no rows but the right columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("experiment", "particle_type") else float)
                         for c in PICK_COLUMNS})


def validate_picks(table: pd.DataFrame, where: str, *, particles: ParticleSet) -> pd.DataFrame:
    """Check columns, numeric finite coordinates and names of ``particles``; return a clean copy."""
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
    unknown = sorted(set(out["particle_type"].unique()) - set(particles.names))
    if unknown:
        raise ValueError(f"{where}: unknown particle types {unknown}; known: {', '.join(particles.names)}")
    return out.reset_index(drop=True)


def read_picks_csv(path: str | Path, *, particles: ParticleSet) -> pd.DataFrame:
    """Read a CSV of picks (experiment, particle_type, x, y, z in Å; extra columns kept, e.g. id)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"picks CSV not found: {path}")
    try:
        table = pd.read_csv(path, dtype={"experiment": str, "particle_type": str})
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable CSV ({err})") from None
    return validate_picks(table, str(path), particles=particles)


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


def read_pick_json(path: str | Path, *, particles: ParticleSet) -> pd.DataFrame:
    """Read one copick pick file (unit Å) into a picks table; an empty points list gives zero rows."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"pick file not found: {path}")
    doc = read_json(path, "pick file", MAX_PICKS_BYTES)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(doc).__name__}")
    missing = [k for k in _REQUIRED_KEYS if k not in doc]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    if doc["unit"] != "angstrom":
        raise ValueError(f"{path}: unit is {doc['unit']!r}; only 'angstrom' is supported")
    name = doc["pickable_object_name"]
    if name not in particles.names:
        raise ValueError(f"{path}: unknown particle {name!r}; known: {', '.join(particles.names)}")
    file_user, file_session, file_object = parse_pick_file_name(path.stem)
    if file_object != name:
        raise ValueError(f"{path}: file name does not match pickable_object_name {name!r}")
    for key, from_name in (("user_id", file_user), ("session_id", file_session)):
        if from_name is not None and doc.get(key) is not None and str(doc[key]) != from_name:
            raise ValueError(f"{path}: {key} {doc[key]!r} does not match the file name ({from_name!r})")
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


@dataclass(frozen=True)
class PickSelection:
    """Which picks of a copick project are the truth: one user's, from one session."""

    user_id: str = TRUTH_USER
    """copick user id of the picks to read (default: the curated ones)"""
    session_id: str | None = None
    """copick session id; None: whichever single session that user has (several are an error)"""
    other_particles: str = "skip"
    """picks of particle classes the copick config declares but the chosen set leaves out: "skip" them with a
    note (scoring a model of fewer classes), or call them an "error" (training: a class left out by mistake)"""


@dataclass(frozen=True)
class PickFile:
    """One pick file of a run and the owner copick sees in it."""

    path: Path
    user_id: str
    session_id: str
    particle: str


def pick_file_owner(path: Path) -> PickFile:
    """copick's owner of a pick file: from its name, or, for a Kaggle-flattened ``<object>.json``, its JSON."""
    user, session, particle = parse_pick_file_name(path.stem)
    if user is None:
        doc = read_json(path, "pick file", MAX_PICKS_BYTES)
        doc = doc if isinstance(doc, dict) else {}
        user, session = str(doc.get("user_id") or TRUTH_USER), str(doc.get("session_id") or TRUTH_SESSION)
    return PickFile(path, user, session, particle)


def run_pick_files(overlay_root: str | Path, run: str) -> list[PickFile]:
    """Every pick file of one run in an overlay (hidden files skipped, as copick does)."""
    return [pick_file_owner(f) for f in sorted(picks_dir(Path(overlay_root), run).glob("*.json"))
            if not f.name.startswith(".")]


def _owners(files: list[PickFile]) -> str:
    owners = sorted({(f.user_id, f.session_id) for f in files})
    return ", ".join(f"user {u!r} session {s!r}" for u, s in owners)


def select_pick_files(files: list[PickFile], selection: PickSelection, where: str) -> list[PickFile]:
    """The files of the selected user (and session); an ambiguous or empty choice is an error listing
    what exists, so a second annotator's or a model's picks never merge silently into the truth."""
    if not files:
        return []
    chosen = [f for f in files if f.user_id == selection.user_id
              and (selection.session_id is None or f.session_id == selection.session_id)]
    wanted = f"user {selection.user_id!r}" + ("" if selection.session_id is None
                                              else f" session {selection.session_id!r}")
    if not chosen:
        raise ValueError(f"{where}: no picks by {wanted}; present: {_owners(files)} "
                         f"(choose with data.picks_user / data.picks_session)")
    sessions = sorted({f.session_id for f in chosen})
    if len(sessions) > 1:
        raise ValueError(f"{where}: {wanted} has several sessions {sessions}; choose one "
                         f"(data.picks_session)")
    particles = [f.particle for f in chosen]
    twice = sorted({p for p in particles if particles.count(p) > 1})
    if twice:
        paths = [str(f.path.name) for f in chosen if f.particle in twice]
        raise ValueError(f"{where}: {wanted} has more than one file for {twice}: {paths}")
    return chosen


@dataclass(frozen=True)
class DeclaredObjects:
    """The objects a copick config declares (particles or not): picks of any other object are an error, since
    a name the project never declared is a typo or a file from another project, not something to skip."""

    names: frozenset[str]
    config: str
    particles: frozenset[str] = frozenset()  # those declared ``is_particle: true``


def particle_files(files: list[PickFile], where: str, reported: set[str] | None = None, *,
                   particles: ParticleSet, declared: DeclaredObjects | None = None,
                   other_particles: str = "skip") -> list[PickFile]:
    """The pick files of particle classes. Another object's (a membrane, a segmentation, a protein outside the
    particle set) is skipped with one line naming it, once per name in ``reported``; never silently, and in
    every layout alike. An object the project's copick config does not declare is an error."""
    reported = set() if reported is None else reported
    if declared is not None:
        strangers = sorted({f.particle for f in files} - declared.names - set(particles.names))
        if strangers:
            raise ValueError(f"{where}: picks of {strangers}, object(s) that the copick config {declared.config} "
                             "does not declare; add them to its pickable_objects (is_particle: false to skip "
                             "them) or remove the files")
        left_out = sorted({f.particle for f in files} & declared.particles - set(particles.names))
        if left_out and other_particles == "error":
            raise ValueError(f"{where}: picks of {left_out}, particle classes of the copick config "
                             f"{declared.config} that the chosen classes ({', '.join(particles.names)}) leave out; "
                             "train on the data's own classes (train.py without --particles, or --particles copick), "
                             "or mark them is_particle: false in the config")
    for name in sorted({f.particle for f in files} - set(particles.names) - reported):
        print(f"note: skipping picks of {name!r} in {where}: not one of the particle classes "
              f"({', '.join(particles.names)})")
        reported.add(name)
    return [f for f in files if f.particle in particles.names]


def read_run_picks(overlay_root: str | Path, run: str, selection: PickSelection = PickSelection(),
                   reported: set[str] | None = None, *, particles: ParticleSet,
                   declared: DeclaredObjects | None = None) -> pd.DataFrame:
    """The selected owner's picks of one run in an overlay; a run folder without pick files gives zero rows.
    Objects that are not particles are skipped with a note (``particle_files``)."""
    run_dir = overlay_runs_dir(Path(overlay_root)) / run
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no picks for run {run!r}: {run_dir} does not exist")
    where = f"picks of run {run!r} in {picks_dir(Path(overlay_root), run)}"
    files = select_pick_files(particle_files(run_pick_files(overlay_root, run), where, reported, particles=particles,
                                             declared=declared, other_particles=selection.other_particles),
                              selection, where)
    tables = [t for t in (read_pick_json(f.path, particles=particles) for f in files) if len(t)]
    if not tables:
        return empty_picks_table()
    return pd.concat(tables, ignore_index=True)


def overlay_run_names(overlay_root: str | Path) -> list[str]:
    """The runs (sorted) that have a folder in ``<overlay_root>/ExperimentRuns``."""
    runs_dir = overlay_runs_dir(Path(overlay_root))
    if not runs_dir.is_dir():
        raise FileNotFoundError(f"overlay has no ExperimentRuns folder: {runs_dir}")
    return sorted(p.name for p in runs_dir.iterdir() if p.is_dir())


def read_overlay(overlay_root: str | Path, selection: PickSelection = PickSelection(),
                 *, particles: ParticleSet) -> pd.DataFrame:
    """Every run's selected picks in an overlay as one table; ``attrs['runs']`` lists all runs (even pick-less)."""
    runs = overlay_run_names(overlay_root)
    reported: set[str] = set()
    tables = [t for t in (read_run_picks(overlay_root, r, selection, reported,
                                         particles=particles) for r in runs) if len(t)]
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


def _stored_chunks(array: object) -> int | None:
    """How many chunk keys of a zarr array its store holds (nested "/" keys included; zarr's own
    ``nchunks_initialized`` lists only the top level and undercounts them)."""
    store = getattr(array, "chunk_store", None) or getattr(array, "store", None)
    if store is None or not hasattr(store, "keys"):
        return None
    prefix = f"{array.path}/" if getattr(array, "path", "") else ""
    return sum(1 for key in store.keys() if key.startswith(prefix)
               and not key.rsplit("/", 1)[-1].startswith("."))


def check_chunks(array: object, where: str) -> None:
    """A zarr array with chunks missing reads them as its fill value, silently: refuse it. (A store written
    with "." chunk keys read as "/"-keyed, as copick does, misses every chunk.)"""
    expected = getattr(array, "nchunks", None)
    present = _stored_chunks(array) if expected is not None else None
    if present is None or present >= expected:
        return
    raise ValueError(f"{where}: {expected - present} of {expected} chunks are missing (they would read as "
                     f"{getattr(array, 'fill_value', 0)!r}); the store is incomplete or its chunk keys use "
                     f"another dimension separator")


def load_volume(array: object, where: str) -> np.ndarray:
    """Read a whole lazy tomogram into float32 ``[z, y, x]``, refusing NaN or infinite voxels."""
    check_volume_array(array, where)
    try:
        volume = np.asarray(array[...], dtype=np.float32)
    except MemoryError:
        gib = float(np.prod(array.shape, dtype=np.float64)) * 4 / 2**30
        raise ValueError(f"{where}: a tomogram of shape {tuple(array.shape)} ({gib:,.1f} GiB as float32) does not "
                         "fit in this machine's memory") from None
    except Exception as err:  # blosc, zlib, OSError, mrcfile...: a corrupt chunk or file, named here
        raise ValueError(f"{where}: cannot read the tomogram ({type(err).__name__}: {err}); "
                         f"a chunk or the file is truncated or corrupt") from None
    finite = np.isfinite(volume)
    if not finite.all():
        raise ValueError(f"{where}: {int(volume.size - finite.sum())} non-finite voxels (NaN or inf)")
    if volume.size and volume.min() == volume.max():
        raise ValueError(f"{where}: every voxel is {float(volume.flat[0])!r}: an empty or unreadable tomogram")
    return volume
