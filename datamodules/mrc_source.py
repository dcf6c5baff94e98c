"""Tomograms as MRC files (memory-mapped, strict header checks) with picks from one CSV."""
from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd

from datamodules.pick_readers import (check_picks_in_volume, check_volume_array, empty_picks_table, load_volume,
                                      read_picks_csv)
from particles import VOXEL_SPACING

MRC_SUFFIXES: tuple[str, ...] = (".mrc", ".rec", ".map")


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
    """The voxel size (Å) in the header, or VOXEL_SPACING where the header leaves it unset (0)."""
    try:
        with mrcfile.open(path, mode="r", permissive=False, header_only=True) as mrc:
            size = float(mrc.voxel_size.x)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a valid MRC file ({err})") from None
    return size if size > 0 else VOXEL_SPACING


class MrcSource:
    """A list of MRC tomograms (run name = file stem) and an optional CSV of their picks."""

    def __init__(self, tomograms: list[Path] | Path, picks_csv: Path | None = None) -> None:
        if isinstance(tomograms, (str, Path)):
            folder = Path(tomograms)
            if not folder.is_dir():
                raise FileNotFoundError(f"MRC folder not found: {folder}")
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in MRC_SUFFIXES)
            if not files:
                raise ValueError(f"no MRC files ({', '.join(MRC_SUFFIXES)}) in {folder}")
        else:
            files = [Path(p) for p in tomograms]
            if not files:
                raise ValueError("MrcSource needs at least one tomogram file")
        for f in files:
            if not f.is_file():
                raise FileNotFoundError(f"tomogram not found: {f}")
        self._files: dict[str, Path] = {}
        for f in files:
            if f.stem in self._files:
                raise ValueError(f"two tomograms share the run name {f.stem!r}: {self._files[f.stem]} and {f}")
            self._files[f.stem] = f
        spacings = {run: _header_spacing(f) for run, f in self._files.items()}
        if max(spacings.values()) - min(spacings.values()) > 1e-3:
            raise ValueError(f"MRC tomograms disagree on voxel size (Å): {spacings}")
        self.voxel_spacing: float = float(next(iter(spacings.values())))
        self.picks_csv = None if picks_csv is None else Path(picks_csv)
        self.has_picks: bool = self.picks_csv is not None
        self._picks = read_picks_csv(self.picks_csv) if self.picks_csv is not None else empty_picks_table()
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

    def tomogram(self, run: str) -> np.ndarray:
        """The run's tomogram as a read-only memory map ``[z, y, x]``."""
        path = self._path(run)
        data = _open_mrc(path)
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
        return f"MrcSource({len(self._files)} tomograms, picks_csv={self.picks_csv})"
