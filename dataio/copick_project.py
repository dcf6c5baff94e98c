"""Any copick project, read through the copick library itself: a local file system project, or, through
copick's own backends, the CryoET Data Portal. ``--data project.json`` selects it.

copick owns the on-disk rules (where runs, voxel spacings, tomograms and pick files live, how pick files are
named), so nothing here re-implements them; this adapter only turns copick objects into what the data module
and inference need, with the truth chosen by user and session exactly as for a Kaggle-layout root.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from runtime.bounded_reads import MAX_PICKS_BYTES, read_json
from dataio.layout import SPLITS
from dataio.zarr_reader import ZarrTomogram
from particles import ParticleSet, checked_spacing
from dataio.pick_readers import (DeclaredObjects, PickFile, PickSelection, check_chunks, check_picks_in_volume,
                                 check_volume_array,
                                 empty_picks_table, load_volume, particle_files, select_pick_files, validate_picks)


def _open_project(config: Path) -> object:
    import copick  # imported here: only copick projects need it, and it takes a second to import

    try:
        return copick.from_file(str(config))
    except Exception as err:  # copick raises pydantic, JSON and fsspec errors alike
        raise ValueError(f"{config}: copick cannot open this project ({type(err).__name__}: {err})") from None


def check_not_moved(config: Path) -> None:
    """A copick config that sits in a dataset root of this layout (``<root>/<split>/static``) but whose local
    roots point outside that root was copied or moved with its dataset: reading it would silently read the
    original. Refuse it, saying how to rewrite it."""
    root = config.parent.resolve()
    if not any((root / split / "static").is_dir() for split in SPLITS):
        return
    doc = read_json(config, "copick config")
    for key in ("static_root", "overlay_root"):
        url = doc.get(key) if isinstance(doc, dict) else None
        if isinstance(url, str) and url.startswith("local://"):
            target = Path(url[len("local://"):])
            if target.is_absolute() and not target.resolve().is_relative_to(root):
                raise ValueError(f"{config}: its {key} {target} lies outside the dataset folder it sits in ({root}),"
                                 " so it would read another copy of the data (was the dataset copied or moved?); "
                                 f"rewrite its configs with: python -m dataio.copick_config {root}")


def checked_points(pick_set: object) -> list:
    """A copick pick set's points, its file first checked to be a regular file of a bounded size (copick
    would block on a FIFO or read /dev/zero forever) and copick's parse errors named by file."""
    path = getattr(pick_set, "path", "a copick pick file")
    fs = getattr(pick_set, "fs", None)
    if fs is not None:
        try:
            info = fs.info(path)
        except FileNotFoundError:
            raise FileNotFoundError(f"pick file not found: {path}") from None
        if info.get("type") != "file":
            raise ValueError(f"pick file {path} is not a regular file (a folder, FIFO or device): refusing to read it")
        if (info.get("size") or 0) > MAX_PICKS_BYTES:
            raise ValueError(f"pick file {path} is {info['size']:,} bytes, more than the {MAX_PICKS_BYTES:,} "
                             "such a file may hold")
    try:
        return list(pick_set.points or [])
    except RecursionError:
        raise ValueError(f"pick file {path}: nested too deeply to be a pick file") from None
    except (ValueError, TypeError, KeyError, AttributeError) as err:  # JSON and pydantic errors alike
        raise ValueError(f"pick file {path}: copick cannot read it ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:300]})") from None


class CopickProjectSource:
    """The runs of one copick project at one voxel spacing and tomogram type."""

    def __init__(self, config: str | Path, tomo_type: str = "denoised", voxel_spacing: float | None = None,
                 selection: PickSelection = PickSelection(), *, particles: ParticleSet) -> None:
        self.config = Path(config)
        self.particles = particles
        if not self.config.is_file():
            raise FileNotFoundError(f"copick config not found: {self.config}")
        check_not_moved(self.config)
        self.project = _open_project(self.config)
        self._runs = {run.name: run for run in self.project.runs}
        if not self._runs:
            raise ValueError(f"{self.config}: the copick project has no runs")
        self.tomo_type, self.selection = tomo_type, selection
        self._reported: set[str] = set()  # non-particle objects already named once
        self.voxel_spacing: float = self._choose_spacing(voxel_spacing)
        self._has_picks: bool | None = None

    @property
    def has_picks(self) -> bool:
        """Whether any run has picks by the selected owner. Asked lazily (listing every run's picks is slow on the
        portal), and never an error: a project whose runs hold only other users' picks (a model's, written into
        its overlay) is simply unlabelled for this selection."""
        if self._has_picks is None:
            user, session = self.selection.user_id, self.selection.session_id
            self._has_picks = any(p.user_id == user and (session is None or p.session_id == session)
                                  for run in self._runs.values() for p in run.picks)
        return self._has_picks

    def _choose_spacing(self, wanted: float | None) -> float:
        first = self._runs[sorted(self._runs)[0]]
        present = sorted(checked_spacing(vs.voxel_size, f"{self.config}: run {first.name!r}, folder "
                                                         f"VoxelSpacing{vs.voxel_size}")
                         for vs in first.voxel_spacings)
        if wanted is not None:
            if not any(abs(s - wanted) < 1e-3 for s in present):
                raise ValueError(f"{self.config}: run {first.name!r} has no voxel spacing {wanted} Å; "
                                 f"present: {present}")
            return float(wanted)
        if len(present) != 1:
            raise ValueError(f"{self.config}: run {first.name!r} has voxel spacings {present} Å; choose one")
        return present[0]

    def run_names(self) -> list[str]:
        """The project's runs, sorted."""
        return sorted(self._runs)

    def _run(self, run: str) -> object:
        if run not in self._runs:
            shown = ", ".join(self.run_names()[:10])
            raise ValueError(f"unknown run {run!r} in copick project {self.config}; runs: {shown}")
        return self._runs[run]

    def _where(self, run: str) -> str:
        return f"run {run!r} of copick project {self.config} ({self.tomo_type} at {self.voxel_spacing} Å)"

    def tomogram(self, run: str) -> zarr.Array:
        """The run's finest-level tomogram as a lazy zarr array ``[z, y, x]``, read through copick's store."""
        spacing = self._run(run).get_voxel_spacing(self.voxel_spacing)
        found = spacing.get_tomograms(self.tomo_type) if spacing is not None else []
        if not found:
            types = sorted({t.tomo_type for t in spacing.tomograms}) if spacing is not None else []
            raise FileNotFoundError(f"{self._where(run)}: no such tomogram; types present: {types}")
        array = ZarrTomogram(found[0].zarr(), self._where(run)).array(0)
        check_volume_array(array, self._where(run))
        check_chunks(array, self._where(run))
        return array

    def load_tomogram(self, run: str) -> np.ndarray:
        """The whole tomogram as float32 ``[z, y, x]``, checked finite and not constant."""
        return load_volume(self.tomogram(run), self._where(run))

    def _pick_sets(self, run: str) -> list[object]:
        """The selected user's (and session's) copick pick sets of the run; ambiguity is an error; objects
        that are not particles are skipped with a note, as in every layout."""
        sets = list(self._run(run).picks)
        files = [PickFile(Path(f"{p.user_id}_{p.session_id}_{p.pickable_object_name}.json"), p.user_id,
                          p.session_id, p.pickable_object_name) for p in sets]
        where = f"picks of {self._where(run)}"
        objects = self.project.pickable_objects
        declared = DeclaredObjects(frozenset(o.name for o in objects), str(self.config),
                                   frozenset(o.name for o in objects if o.is_particle))
        kept = particle_files(files, where, self._reported, particles=self.particles, declared=declared,
                              other_particles=self.selection.other_particles)
        chosen = {f.path for f in select_pick_files(kept, self.selection, where)}
        return [p for p, f in zip(sets, files) if f.path in chosen]

    def picks(self, run: str) -> pd.DataFrame:
        """The run's selected picks (Å), checked against the volume bounds."""
        tables = []
        for pick_set in self._pick_sets(run):
            xyz = np.array([[p.location.x, p.location.y, p.location.z] for p in checked_points(pick_set)],
                           dtype=np.float64).reshape(-1, 3)
            tables.append(pd.DataFrame({"experiment": [run] * len(xyz),
                                        "particle_type": [pick_set.pickable_object_name] * len(xyz),
                                        "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}))
        table = pd.concat([t for t in tables if len(t)], ignore_index=True) if any(map(len, tables)) \
            else empty_picks_table()
        table = validate_picks(table, f"picks of {self._where(run)}",
                               particles=self.particles)  # NaN coordinates, names
        check_picks_in_volume(table, tuple(self.tomogram(run).shape), self.voxel_spacing,
                              f"picks of {self._where(run)}")
        return table

    def __repr__(self) -> str:
        return (f"CopickProjectSource({str(self.config)!r}, tomo_type={self.tomo_type!r}, "
                f"voxel_spacing={self.voxel_spacing}, runs={len(self._runs)})")
