"""Where tomograms and picks come from: one protocol, two formats, one function that picks the format."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from dataio.copick_project import CopickProjectSource
from dataio.copick_source import CopickSource
from dataio.layout import SPLITS, static_runs_dir
from dataio.file_source import TOMOGRAM_SUFFIXES, FileSource
from dataio.pick_readers import PickSelection, read_pick_json, read_picks_csv
from particles import ParticleSet

__all__ = ["TomogramSource", "CopickProjectSource", "CopickSource", "FileSource", "open_source", "read_pick_json",
           "read_picks_csv"]


@runtime_checkable
class TomogramSource(Protocol):
    """What the data module and inference need from a dataset, whatever its file format."""

    has_picks: bool
    voxel_spacing: float  # Å per voxel of the arrays tomogram() returns

    def run_names(self) -> list[str]:
        """The runs, sorted."""
        ...

    def tomogram(self, run: str) -> object:
        """A lazy array: ``.shape`` is (z, y, x) and slicing returns an ``np.ndarray``."""
        ...

    def load_tomogram(self, run: str) -> np.ndarray:
        """The whole volume, float32 ``[z, y, x]``, checked rank 3 and finite."""
        ...

    def picks(self, run: str) -> pd.DataFrame:
        """The run's picks table (Å), checked against particle names and the volume bounds."""
        ...


def open_source(path: str | Path | list[Path], split: str = "train", tomo_type: str = "denoised",
                level: int = 0, picks_csv: str | Path | None = None,
                selection: PickSelection = PickSelection(), voxel_spacing: float | None = None,
                *, particles: ParticleSet) -> TomogramSource:
    """A copick config JSON -> CopickProjectSource (through the copick library; ``split`` does not apply);
    a Kaggle / copick-layout root (has ``<split>/static``) -> CopickSource; MRC/zarr files or a folder of them
    -> FileSource."""
    if isinstance(path, (list, tuple)):
        return FileSource([Path(p) for p in path], None if picks_csv is None else Path(picks_csv), particles=particles)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data path not found: {path}")
    if path.is_file() and path.suffix.lower() == ".json":
        if picks_csv is not None:
            raise ValueError(f"{path} is a copick project (picks come from copick); do not pass a picks CSV")
        if level != 0:
            raise ValueError(f"{path}: copick projects are read at their finest level; level must be 0")
        return CopickProjectSource(path, tomo_type=tomo_type, voxel_spacing=voxel_spacing, selection=selection,
                                   particles=particles)
    if path.is_dir() and any((path / s / "static").is_dir() for s in SPLITS):
        if picks_csv is not None:
            raise ValueError(f"{path} is a copick dataset (picks come from its overlay); do not pass a picks CSV")
        if voxel_spacing is not None:
            raise ValueError(f"{path}: a Kaggle-layout root has one voxel spacing; voxel_spacing applies to "
                             f"copick config JSONs only")
        return CopickSource(path, split=split, tomo_type=tomo_type, level=level, selection=selection,
                            particles=particles)
    is_tomogram_file = path.suffix.lower() in TOMOGRAM_SUFFIXES  # an MRC file or a zarr directory
    is_tomogram_dir = path.is_dir() and not is_tomogram_file and any(p.suffix.lower() in TOMOGRAM_SUFFIXES
                                                           for p in path.iterdir())
    if is_tomogram_file or is_tomogram_dir:
        if level != 0:
            raise ValueError(f"{path}: tomogram files are read at their finest level; level must be 0, got {level}")
        csv = None if picks_csv is None else Path(picks_csv)
        return FileSource([path] if is_tomogram_file else path, csv, particles=particles)
    expected = " or ".join(str(static_runs_dir(path, s)) for s in SPLITS)
    raise ValueError(f"{path}: neither a copick dataset (expected {expected}) "
                     f"nor tomogram files ({', '.join(TOMOGRAM_SUFFIXES)})")
