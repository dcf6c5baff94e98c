"""Tomograms and picks in the copick / Kaggle CZII layout (zarr v2 multiscale groups, JSON picks)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from dataio.layout import (COPICK_CONFIG_NAME, SPLITS, TEST_COPICK_CONFIG_NAME, VOXEL_SPACING_DIR, static_runs_dir,
                           truth_overlay_root, tomogram_path, train_overlay_root)
from dataio.particle_sets import declared_objects
from dataio.zarr_reader import ZarrTomogram
from dataio.pick_readers import (PickSelection, check_chunks, check_picks_in_volume, check_volume_array,
                                 load_volume, read_run_picks)
from particles import VOXEL_SPACING, ParticleSet


class CopickSource:
    """One split of a copick dataset: lazy zarr tomograms per run, picks from an overlay."""

    def __init__(self, root: str | Path, split: str = "train", tomo_type: str = "denoised", level: int = 0,
                 overlay_root: str | Path | None = None, selection: PickSelection = PickSelection(),
                 *, particles: ParticleSet) -> None:
        self.particles = particles
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"dataset root not found: {self.root}")
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if level < 0:
            raise ValueError(f"multiscale level must be >= 0, got {level}")
        self.split, self.tomo_type, self.level = split, tomo_type, int(level)
        self.selection = selection
        self.voxel_spacing: float = VOXEL_SPACING * 2 ** self.level
        runs_dir = static_runs_dir(self.root, split)
        if not runs_dir.is_dir():
            raise FileNotFoundError(f"no {split} tomograms under {self.root}: {runs_dir} does not exist (the "
                                    f"copick layout is <root>/{split}/static/ExperimentRuns/<run>/"
                                    f"{VOXEL_SPACING_DIR}/<type>.zarr)")
        self._runs = sorted(p.name for p in runs_dir.iterdir() if p.is_dir())
        if not self._runs:
            raise ValueError(f"no runs in {runs_dir}")
        if overlay_root is not None:
            self.overlay_root: Path | None = Path(overlay_root)
            if not self.overlay_root.is_dir():
                raise FileNotFoundError(f"overlay root not found: {self.overlay_root}")
        elif split == "train":
            self.overlay_root = train_overlay_root(self.root)
        else:
            truth = truth_overlay_root(self.root)
            self.overlay_root = truth if truth.is_dir() else None
        self.has_picks: bool = self.overlay_root is not None
        self._reported: set[str] = set()  # non-particle objects already named once
        config = self.root / (COPICK_CONFIG_NAME if split == "train" else TEST_COPICK_CONFIG_NAME)
        self._declared = declared_objects(config)  # None without a readable config

    def run_names(self) -> list[str]:
        """The runs of this split, sorted."""
        return list(self._runs)

    def _check_run(self, run: str) -> None:
        if run not in self._runs:
            shown = ", ".join(self._runs[:10]) + (" ..." if len(self._runs) > 10 else "")
            raise ValueError(f"unknown run {run!r} in {static_runs_dir(self.root, self.split)}; runs: {shown}")

    def tomogram_path(self, run: str) -> Path:
        """Where this run's tomogram of the chosen type lives (checked to exist)."""
        self._check_run(run)
        path = tomogram_path(self.root, self.split, run, self.tomo_type)
        if not path.is_dir():
            spacing_dir = path.parent
            types = sorted(p.name[:-5] for p in spacing_dir.glob("*.zarr")) if spacing_dir.is_dir() else []
            others = sorted(p.name for p in spacing_dir.parent.glob("VoxelSpacing*") if p.is_dir())
            found = (f"types present: {types}" if types else
                     f"it has {', '.join(others)} instead of {VOXEL_SPACING_DIR}: this layout reads "
                     f"{VOXEL_SPACING_DIR} (rename the folder, or give the project's copick config as --data)"
                     if others else f"no tomograms at all in {spacing_dir}")
            raise FileNotFoundError(f"run {run!r} has no {self.tomo_type!r} tomogram ({path}); {found}")
        return path

    def tomogram(self, run: str) -> zarr.Array:
        """The run's tomogram as a lazy zarr array ``[z, y, x]`` at the chosen level."""
        path = self.tomogram_path(run)
        array = ZarrTomogram(path, str(path)).array(self.level)
        check_volume_array(array, f"{path} level {self.level}")
        check_chunks(array, f"{path} level {self.level}")
        return array

    def load_tomogram(self, run: str) -> np.ndarray:
        """The whole tomogram as float32 ``[z, y, x]``, checked finite."""
        return load_volume(self.tomogram(run), f"{self.tomogram_path(run)} level {self.level}")

    def _full_extent(self, run: str) -> tuple[tuple[int, ...], float]:
        """Shape and spacing of the finest level present, the physical extent picks must lie in."""
        array = self.tomogram(run)
        if self.level > 0:
            path = self.tomogram_path(run)
            return tuple(ZarrTomogram(path, str(path)).array(0).shape), VOXEL_SPACING
        return tuple(array.shape), self.voxel_spacing

    def picks(self, run: str) -> pd.DataFrame:
        """The run's picks table (Å), checked against particle names and the volume bounds."""
        self._check_run(run)
        if self.overlay_root is None:
            raise ValueError(f"the {self.split} split of {self.root} has no picks "
                             f"(no {truth_overlay_root(self.root)})")
        table = read_run_picks(self.overlay_root, run, self.selection, self._reported, particles=self.particles,
                               declared=self._declared)
        shape, spacing = self._full_extent(run)
        check_picks_in_volume(table, shape, spacing, f"picks of run {run!r} in {self.overlay_root}")
        return table

    def __repr__(self) -> str:
        return (f"CopickSource({str(self.root)!r}, split={self.split!r}, tomo_type={self.tomo_type!r}, "
                f"level={self.level}, runs={len(self._runs)}, voxel dir={VOXEL_SPACING_DIR})")
