"""Tomograms given as files — MRC (memory-mapped, strict header checks) or zarr groups — with picks from one CSV."""
from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import zarr

from dataio.pick_readers import (check_picks_in_volume, check_volume_array, empty_picks_table, load_volume,
                                      read_picks_csv)
from dataio.zarr_reader import ZarrTomogram
from particles import VOXEL_SPACING, ParticleSet, checked_spacing

MRC_SUFFIXES: tuple[str, ...] = (".mrc", ".rec", ".map")
ZARR_SUFFIX = ".zarr"
TOMOGRAM_SUFFIXES: tuple[str, ...] = (*MRC_SUFFIXES, ZARR_SUFFIX)


def run_name_of(path: Path) -> str:
    """``<run>/VoxelSpacing…/<type>.zarr`` (copick) -> ``<run>``; any other file -> its stem."""
    if path.parent.name.startswith("VoxelSpacing"):
        return path.parent.parent.name
    return path.stem


def _open_zarr(path: Path) -> zarr.Array:
    """Level 0 of a zarr multiscale group (or a bare zarr array), lazily, its metadata checked first."""
    return ZarrTomogram(path, str(path)).array(0)


def _zarr_spacing(path: Path) -> float:
    """Level 0's OME-NGFF scale (Å), or VOXEL_SPACING when the file carries none (said once)."""
    spacing = ZarrTomogram(path, str(path)).spacing(0)
    if spacing is None:
        print(f"note: {path} gives no OME-NGFF voxel spacing: taken as {VOXEL_SPACING} Å")
        return VOXEL_SPACING
    return spacing


def _open_mrc(path: Path) -> np.ndarray:
    """Memory-map an MRC file's data ``[z, y, x]`` after mrcfile's strict header validation."""
    try:
        with mrcfile.mmap(path, mode="r", permissive=False) as mrc:
            data = mrc.data
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a valid MRC file ({err})") from None
    if data is None:
        raise ValueError(f"{path}: MRC file holds no data")
    return data  # the numpy memmap keeps its own mapping after the file object closes


def _header_spacing(path: Path) -> float:
    """The voxel size (Å) in the header; an unset one (0 on every axis) is VOXEL_SPACING, said once; a
    negative, NaN or non-cubic one is an error."""
    try:
        with mrcfile.open(path, mode="r", permissive=False, header_only=True) as mrc:
            sizes = [float(mrc.voxel_size[axis]) for axis in "xyz"]
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a valid MRC file ({err})") from None
    if sizes == [0.0, 0.0, 0.0]:
        print(f"note: the MRC header of {path} gives no voxel size (0): taken as {VOXEL_SPACING} Å")
        return VOXEL_SPACING
    values = [checked_spacing(v, f"{path} (MRC header voxel size)") for v in sizes]
    if max(values) > min(values) * 1.01:
        raise ValueError(f"{path}: voxels are not cubic (MRC header voxel size {values} Å); resample them first")
    return values[0]


class FileSource:
    """A list of MRC or zarr tomograms (run name: the file stem, or the copick run folder of a zarr) and an
    optional CSV of their picks."""

    def __init__(self, tomograms: list[Path] | Path, picks_csv: Path | None = None,
                 *, particles: ParticleSet) -> None:
        if isinstance(tomograms, (str, Path)):
            folder = Path(tomograms)
            if not folder.is_dir():
                raise FileNotFoundError(f"MRC folder not found: {folder}")
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in TOMOGRAM_SUFFIXES)
            if not files:
                raise ValueError(f"no tomogram files ({', '.join(TOMOGRAM_SUFFIXES)}) in {folder}")
        else:
            files = [Path(p) for p in tomograms]
            if not files:
                raise ValueError("FileSource needs at least one tomogram file")
        for f in files:
            if not f.exists():
                raise FileNotFoundError(f"tomogram not found: {f}")
            if f.suffix.lower() not in TOMOGRAM_SUFFIXES:
                raise ValueError(f"{f}: not a tomogram file ({', '.join(TOMOGRAM_SUFFIXES)})")
        self._files: dict[str, Path] = {}
        for f in files:
            run = run_name_of(f)
            if run in self._files:
                raise ValueError(f"two tomograms share the run name {run!r}: {self._files[run]} and {f}")
            self._files[run] = f
        spacings = {run: _zarr_spacing(f) if f.suffix.lower() == ZARR_SUFFIX else _header_spacing(f)
                    for run, f in self._files.items()}
        if max(spacings.values()) - min(spacings.values()) > 1e-3:
            raise ValueError(f"MRC tomograms disagree on voxel size (Å): {spacings}")
        self.voxel_spacing: float = float(next(iter(spacings.values())))
        self.picks_csv = None if picks_csv is None else Path(picks_csv)
        self.has_picks: bool = self.picks_csv is not None
        self._picks = (read_picks_csv(self.picks_csv, particles=particles) if self.picks_csv is not None
                       else empty_picks_table())
        strangers = sorted(set(self._picks["experiment"]) - set(self._files))
        if strangers:
            raise ValueError(f"{self.picks_csv}: picks for runs with no tomogram: {strangers}; "
                             f"tomograms: {sorted(self._files)}")

    def run_names(self) -> list[str]:
        """The runs (file stems), sorted."""
        return sorted(self._files)

    def _path(self, run: str) -> Path:
        if run not in self._files:
            raise ValueError(f"unknown run {run!r}; runs: {', '.join(self.run_names())}")
        return self._files[run]

    def tomogram(self, run: str) -> np.ndarray | zarr.Array:
        """The run's tomogram, lazily: a read-only memory map (MRC) or a zarr array ``[z, y, x]``."""
        path = self._path(run)
        data = _open_zarr(path) if path.suffix.lower() == ZARR_SUFFIX else _open_mrc(path)
        check_volume_array(data, str(path))
        return data

    def load_tomogram(self, run: str) -> np.ndarray:
        """The whole tomogram as float32 ``[z, y, x]``, checked finite."""
        return load_volume(self.tomogram(run), str(self._path(run)))

    def picks(self, run: str) -> pd.DataFrame:
        """The run's rows of the picks CSV (Å), checked against the volume bounds."""
        path = self._path(run)
        if self.picks_csv is None:
            raise ValueError(f"no picks CSV was given, so run {run!r} ({path}) has no picks")
        table = self._picks[self._picks["experiment"] == run].reset_index(drop=True)
        check_picks_in_volume(table, tuple(self.tomogram(run).shape), self.voxel_spacing,
                              f"{self.picks_csv} (run {run!r})")
        return table

    def __repr__(self) -> str:
        return f"FileSource({len(self._files)} tomograms, picks_csv={self.picks_csv})"
