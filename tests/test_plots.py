"""Figures are written as non-empty PNGs and bad input fails clearly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from particles import CZII_PARTICLES, PARTICLE_NAMES, VOXEL_SPACING
from postprocess.plots import pr_curves_figure, slice_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def picks(rows: list[tuple[str, float, float, float]], score: bool = False) -> pd.DataFrame:
    t = pd.DataFrame({"experiment": "A", "particle_type": [r[0] for r in rows], "x": [r[1] for r in rows],
                      "y": [r[2] for r in rows], "z": [r[3] for r in rows]})
    if score:
        t["score"] = np.linspace(0.9, 0.1, len(t))
    return t


def test_slice_figure_writes_png(tmp_path: Path) -> None:
    volume = np.random.default_rng(0).normal(size=(16, 40, 48)).astype(np.float32)
    s = VOXEL_SPACING
    truth = picks([("ribosome", 10 * s, 12 * s, 8 * s), ("apo-ferritin", 30 * s, 20 * s, 3 * s)])
    pred = picks([("ribosome", 11 * s, 12 * s, 8 * s)])
    out = slice_figure(volume, truth, pred, tmp_path / "sub" / "slices.png", spacing=VOXEL_SPACING, n_slices=3,
                       particles=CZII_PARTICLES)
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["slices.png"]  # no temp files left


def test_pr_curves_figure_writes_png(tmp_path: Path) -> None:
    truth = picks([("ribosome", 0.0, 0.0, 0.0), ("ribosome", 1000.0, 0.0, 0.0)])
    cands = picks([("ribosome", 0.0, 0.0, 0.0), ("ribosome", 3000.0, 0.0, 0.0), ("ribosome", 1000.0, 0.0, 0.0)],
                  score=True)
    out = pr_curves_figure(cands, truth, {n: 0.5 for n in PARTICLE_NAMES}, tmp_path / "pr.png",
                           particles=CZII_PARTICLES)
    assert out.read_bytes().startswith(PNG_MAGIC) and out.stat().st_size > 5000


def test_bad_input_is_clear_error(tmp_path: Path) -> None:
    empty = picks([])
    with pytest.raises(ValueError, match="shape"):
        slice_figure(np.zeros((4, 4)), empty, empty, tmp_path / "a.png", spacing=VOXEL_SPACING,
                     particles=CZII_PARTICLES)
    with pytest.raises(ValueError, match="must end in .png"):
        slice_figure(np.zeros((4, 4, 4)), empty, empty, tmp_path / "a.jpg", spacing=VOXEL_SPACING,
                     particles=CZII_PARTICLES)
    with pytest.raises(ValueError, match="predicted picks.*lacks columns"):
        slice_figure(np.zeros((4, 4, 4)), empty, empty.drop(columns="z"), tmp_path / "a.png",
                     spacing=VOXEL_SPACING, particles=CZII_PARTICLES)
    with pytest.raises(ValueError, match="unknown particle types"):
        slice_figure(np.zeros((4, 4, 4)), picks([("bogus", 0, 0, 0)]), empty, tmp_path / "a.png",
                     spacing=VOXEL_SPACING, particles=CZII_PARTICLES)
    with pytest.raises(ValueError, match="score"):
        pr_curves_figure(empty, empty, {}, tmp_path / "b.png", particles=CZII_PARTICLES)
    assert not list(tmp_path.iterdir())
