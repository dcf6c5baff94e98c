"""A tomogram through slice detectors: every slice's 2.5D stack detected (batched), the detections merged into
3D centres per model, the models' picks voted with equal weights, as candidates in Å."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from datamodules.slice_boxes import stack_index
from particles import ParticleSet, index_to_angstrom
from postprocess.family_fusion import fuse_equally
from postprocess.slice_merge import merge_slice_detections

CANDIDATE_COLUMNS: list[str] = ["experiment", "particle_type", "x", "y", "z", "score"]


@torch.no_grad()
def detect_slices(model: nn.Module, volume: torch.Tensor, half_depth: int, batch_size: int,
                  particles: ParticleSet, autocast_dtype: torch.dtype | None = None) -> pd.DataFrame:
    """Every slice of a normalised ``[D, H, W]`` volume -> its detections (``particle_type``; ``z, y, x`` the
    slice and the box centre in voxels; ``score``)."""
    depth = volume.shape[0]
    names = np.array(particles.names)
    tables = []
    for start in range(0, depth, batch_size):
        z = np.arange(start, min(start + batch_size, depth))
        stacks = volume[torch.from_numpy(stack_index(z, half_depth, depth)).to(volume.device)]  # [B, 2k+1, H, W]
        with torch.autocast(volume.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            found = model(list(stacks))
        for depth_index, result in zip(z, found):
            boxes = result["boxes"].float().cpu().numpy()
            tables.append(pd.DataFrame({
                "particle_type": names[result["labels"].cpu().numpy()], "z": float(depth_index),
                "y": (boxes[:, 1] + boxes[:, 3]) / 2, "x": (boxes[:, 0] + boxes[:, 2]) / 2,
                "score": result["scores"].float().cpu().numpy()}))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        columns=["particle_type", "z", "y", "x", "score"])


def merged_candidates(detections: pd.DataFrame, run: str, spacing: float, particles: ParticleSet,
                      max_per_class: int) -> pd.DataFrame:
    """One model's slice detections of a run -> its 3D candidates in Å (at most ``max_per_class`` per class)."""
    radii = {p.name: p.radius_voxels(spacing) for p in particles.particles}
    merged = merge_slice_detections(detections, radii)
    xyz = index_to_angstrom(merged[["z", "y", "x"]].to_numpy(np.float64).reshape(-1, 3), spacing)
    table = pd.DataFrame({"experiment": run, "particle_type": merged["particle_type"].astype(str),
                          "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2], "score": merged["score"]})
    return table.groupby("particle_type", sort=False).head(max_per_class).reset_index(drop=True)[CANDIDATE_COLUMNS]


def slice_detector_candidates(models: Sequence[nn.Module], volume: torch.Tensor, run: str, *, spacing: float,
                              particles: ParticleSet, half_depth: int, batch_size: int, max_per_class: int,
                              autocast_dtype: torch.dtype | None = None) -> pd.DataFrame:
    """Candidates of one run from several slice-detector models: each model's merged picks, voted with equal
    weights (``family_fusion.fuse_equally``)."""
    per_model = [merged_candidates(detect_slices(model, volume, half_depth, batch_size, particles, autocast_dtype),
                                   run, spacing, particles, max_per_class) for model in models]
    fused = fuse_equally(per_model, particles=particles)
    ranked = fused.sort_values("score", ascending=False, kind="stable")
    return ranked.groupby("particle_type", sort=False).head(max_per_class).reset_index(drop=True)[CANDIDATE_COLUMNS]
