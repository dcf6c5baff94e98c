"""Pictures for a quick look: picks over tomogram slices, and per-class precision-recall curves."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from particles import ParticleSet
from runtime.atomic import OutputBatch, atomic_path  # noqa: E402
from postprocess.thresholds import precision_recall_curve  # noqa: E402



def class_colours(particles: ParticleSet) -> dict[str, tuple[float, ...]]:
    """One colour per class, the same for a class in every figure of a set (tab10, then tab20 beyond ten)."""
    cmap = plt.get_cmap("tab10" if particles.num_classes <= 10 else "tab20")
    return {p.name: cmap(i % cmap.N) for i, p in enumerate(particles.particles)}


def _check_png(out_png: str | Path) -> Path:
    out_png = Path(out_png)
    if out_png.suffix.lower() != ".png":
        raise ValueError(f"figure path {out_png} must end in .png")
    return out_png


def _check_picks(table: pd.DataFrame, where: str, particles: ParticleSet) -> pd.DataFrame:
    missing = [c for c in ("particle_type", "x", "y", "z") if c not in table.columns]
    if missing:
        raise ValueError(f"{where}: picks table lacks columns {missing}; has {list(table.columns)}")
    unknown = sorted(set(table["particle_type"]) - set(particles.names))
    if unknown:
        raise ValueError(f"{where}: unknown particle types {unknown}")
    return table


def _save(fig: plt.Figure, out_png: Path, batch: OutputBatch | None = None) -> Path:
    """Write the figure atomically (or as part of ``batch``) and free it."""
    try:
        with atomic_path(out_png, suffix=".png", batch=batch) as tmp:
            fig.savefig(tmp, dpi=100, format="png", bbox_inches="tight", pad_inches=0.15)
    finally:
        plt.close(fig)
    return out_png


def slice_figure(volume: np.ndarray, picks_true: pd.DataFrame, picks_pred: pd.DataFrame, out_png: str | Path,
                 *, spacing: float, n_slices: int = 4, batch: OutputBatch | None = None,
                 particles: ParticleSet) -> Path:
    """``n_slices`` evenly spaced z slices of ``volume [D, H, W]`` with true picks (circles of the particle's
    cross-section) and predicted picks (crosses) lying within one radius of each slice."""
    out_png = _check_png(out_png)
    volume = np.asarray(volume)
    if volume.ndim != 3 or min(volume.shape) < 1:
        raise ValueError(f"slice_figure: volume must be [D, H, W]; got shape {volume.shape}")
    if n_slices < 1:
        raise ValueError(f"slice_figure: n_slices must be >= 1; got {n_slices}")
    truth, pred = _check_picks(picks_true, "true picks", particles), _check_picks(picks_pred, "predicted picks",
                                                                                   particles)
    colours = class_colours(particles)
    depth = volume.shape[0]
    zs = np.unique(np.linspace(0, depth - 1, n_slices + 2)[1:-1].round().astype(int)) if depth > 2 else [depth // 2]
    fig, axes = plt.subplots(1, len(zs), figsize=(4.5 * len(zs), 4.8), squeeze=False)
    for ax, z in zip(axes[0], zs):
        image = volume[z]
        lo, hi = np.percentile(image, [1, 99])
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1)
        for table, is_truth in ((truth, True), (pred, False)):
            for name, group in table.groupby("particle_type"):
                radius = particles.get(name).radius / spacing
                dz = group["z"].to_numpy(dtype=float) / spacing - z
                near = np.abs(dz) <= radius
                xs, ys = group["x"].to_numpy(float)[near] / spacing, group["y"].to_numpy(float)[near] / spacing
                if is_truth:
                    for x, y, r in zip(xs, ys, np.sqrt(radius**2 - dz[near] ** 2)):
                        ax.add_patch(plt.Circle((x, y), r, fill=False, color=colours[name], lw=1.2))
                else:
                    ax.scatter(xs, ys, marker="x", s=30, color=colours[name], linewidths=1.2)
        ax.set_title(f"z = {z} ({z * spacing:.0f} Å)")
        ax.set_xlim(-0.5, volume.shape[2] - 0.5)
        ax.set_ylim(volume.shape[1] - 0.5, -0.5)
        ax.axis("off")
    handles = [Line2D([], [], color=colours[n], lw=2, label=n) for n in particles.names]
    handles += [Line2D([], [], marker="o", ls="", mfc="none", color="k", label="true"),
                Line2D([], [], marker="x", ls="", color="k", label="predicted")]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return _save(fig, out_png, batch)


def pr_curves_figure(candidates: pd.DataFrame, gt: pd.DataFrame, thresholds: Mapping[str, float],
                     out_png: str | Path, batch: OutputBatch | None = None,
                     *, particles: ParticleSet) -> Path:
    """Precision-recall curve per class over the candidate scores, the chosen threshold marked."""
    out_png = _check_png(out_png)
    columns = min(3, particles.num_classes)
    rows = -(-particles.num_classes // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.75 * rows), squeeze=False)
    colours = class_colours(particles)
    for ax in axes.ravel()[particles.num_classes:]:
        ax.axis("off")
    for ax, p in zip(axes.ravel(), particles.particles):
        curve = precision_recall_curve(candidates, gt, p.name, particles=particles)
        ax.set_title(f"{p.name} (weight {p.weight:g})", fontsize=10)
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        if len(curve) == 0 or curve["tp"].max() == 0:
            ax.text(0.5, 0.5, "no hits", ha="center", va="center", transform=ax.transAxes)
            continue
        ax.plot(curve["recall"], curve["precision"], color=colours[p.name], lw=1.5)
        if p.name in thresholds:
            t = float(thresholds[p.name])
            at = curve[curve["threshold"] >= t]
            row = at.iloc[0] if len(at) else curve.iloc[-1]
            ax.plot([row["recall"]], [row["precision"]], "ko", ms=6)
            ax.text(0.03, 0.95, f"threshold {t:.3g}\nP {row['precision']:.2f}  R {row['recall']:.2f}  "
                    f"F4 {row['f4']:.3f}", transform=ax.transAxes, va="top", fontsize=8)
    fig.tight_layout()
    return _save(fig, out_png, batch)
