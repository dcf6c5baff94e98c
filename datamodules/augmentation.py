"""Augmentations that move image and pick coordinates together, so targets follow the image exactly.

Every function takes ``(image [D, H, W], centers_zyx [N, 3])`` (continuous indices, voxel ``i``
centred at ``i``) and returns the transformed pair. Rotations are about the z axis (in the xy
plane), which keeps the missing wedge about the beam axis as in the real data.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from config.experiment import AugmentConfig


@dataclass(frozen=True)
class AugmentParams:
    """One draw of augmentation parameters."""

    angle_deg: float = 0.0
    flips: tuple[bool, bool, bool] = (False, False, False)
    rot90_k: int = 0
    scale: float = 1.0
    shift: float = 0.0


def draw_params(rng: np.random.Generator, cfg: AugmentConfig, square_xy: bool = True) -> AugmentParams:
    """Draw one parameter set; odd rot90 only when the patch is square in xy (else the shape would change)."""
    angle = 0.0
    if cfg.rotate_prob > 0 and cfg.rotate_max_deg > 0 and rng.random() < cfg.rotate_prob:
        angle = float(rng.uniform(-cfg.rotate_max_deg, cfg.rotate_max_deg))
    flips = tuple(bool(f) for f in rng.random(3) < 0.5) if cfg.flip else (False, False, False)
    k = int(rng.integers(0, 4)) if cfg.rot90 else 0
    if not square_xy:
        k -= k % 2
    scale = float(rng.uniform(1 - cfg.intensity_scale, 1 + cfg.intensity_scale)) if cfg.intensity_scale else 1.0
    shift = float(rng.uniform(-cfg.intensity_shift, cfg.intensity_shift)) if cfg.intensity_shift else 0.0
    return AugmentParams(angle, flips, k, scale, shift)  # type: ignore[arg-type]


def crop(image: np.ndarray, centers_zyx: np.ndarray, start: tuple[int, int, int],
         size: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The box ``image[start : start + size]`` (a view) and centres relative to it."""
    s = np.asarray(start, dtype=np.int64)
    if np.any(s < 0) or np.any(s + np.asarray(size) > np.asarray(image.shape)):
        raise ValueError(f"crop start {tuple(s)} size {tuple(size)} leaves the image of shape {image.shape}")
    box = image[s[0]:s[0] + size[0], s[1]:s[1] + size[1], s[2]:s[2] + size[2]]
    return box, np.asarray(centers_zyx, dtype=np.float64).reshape(-1, 3) - s


def flip(image: np.ndarray, centers_zyx: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Mirror along ``axis`` (0 = z, 1 = y, 2 = x): index i -> n - 1 - i."""
    out = np.asarray(centers_zyx, dtype=np.float64).reshape(-1, 3).copy()
    out[:, axis] = image.shape[axis] - 1 - out[:, axis]
    return np.flip(image, axis=axis), out


def rot90_xy(image: np.ndarray, centers_zyx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotate by ``k`` quarter turns in the xy plane (``np.rot90`` on axes (1, 2))."""
    out = np.asarray(centers_zyx, dtype=np.float64).reshape(-1, 3).copy()
    height, width = image.shape[1], image.shape[2]
    for _ in range(k % 4):  # one quarter turn: (y, x) -> (W - 1 - x, y); then H and W swap
        out[:, 1], out[:, 2] = width - 1 - out[:, 2], out[:, 1].copy()
        height, width = width, height
    return np.rot90(image, k % 4, axes=(1, 2)), out


def rotate_xy(image: np.ndarray, centers_zyx: np.ndarray, angle_deg: float,
              out_hw: tuple[int, int] | None = None,
              center_yx: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rotate by ``angle_deg`` about the z axis through ``center_yx`` (default: the image centre).

    Samples an ``out_hw`` grid centred on ``center_yx`` with trilinear (bilinear per slice)
    interpolation, so a large ``image`` serves as its own margin: no empty corners inside it;
    outside it the border values repeat. Output voxel o maps to source R (o - o_c) + c, picks the inverse.
    """
    depth, height, width = image.shape
    oh, ow = out_hw if out_hw is not None else (height, width)
    cy, cx = center_yx if center_yx is not None else ((height - 1) / 2, (width - 1) / 2)
    theta = np.deg2rad(angle_deg)
    cos, sin = float(np.cos(theta)), float(np.sin(theta))
    rot = np.array([[cos, -sin], [sin, cos]])  # acts on (y, x) offsets
    oy = torch.arange(oh, dtype=torch.float64) - (oh - 1) / 2
    ox = torch.arange(ow, dtype=torch.float64) - (ow - 1) / 2
    yy, xx = torch.meshgrid(oy, ox, indexing="ij")  # [oh, ow]
    src_y = rot[0, 0] * yy + rot[0, 1] * xx + cy
    src_x = rot[1, 0] * yy + rot[1, 1] * xx + cx
    grid = torch.stack([2 * src_x / max(width - 1, 1) - 1, 2 * src_y / max(height - 1, 1) - 1], dim=-1)
    slab = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]  # [1, D, H, W]
    out = F.grid_sample(slab, grid[None].float(), mode="bilinear", padding_mode="border",
                        align_corners=True)[0]  # [D, oh, ow]
    pts = np.asarray(centers_zyx, dtype=np.float64).reshape(-1, 3).copy()
    offsets = pts[:, 1:] - np.array([cy, cx])  # [N, 2]
    pts[:, 1:] = offsets @ rot + np.array([(oh - 1) / 2, (ow - 1) / 2])  # R^T applied to each row
    return out.numpy(), pts


def scale_intensity(image: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """``image * scale + shift`` (the picks do not move)."""
    return (image * np.float32(scale) + np.float32(shift)).astype(np.float32, copy=False)


def extract_patch(volume: np.ndarray, centers_zyx: np.ndarray, start: tuple[int, int, int],
                  size: tuple[int, int, int], params: AugmentParams) -> tuple[np.ndarray, np.ndarray]:
    """Cut the augmented patch at ``start`` (rotated about its centre using the volume as margin).

    Returns a C-contiguous float32 ``[D, H, W]`` patch and the picks in its coordinates.
    """
    if params.angle_deg:
        slab, pts = crop(volume, centers_zyx, (start[0], 0, 0), (size[0], volume.shape[1], volume.shape[2]))
        center = (start[1] + (size[1] - 1) / 2, start[2] + (size[2] - 1) / 2)
        patch, pts = rotate_xy(slab, pts, params.angle_deg, (size[1], size[2]), center)
    else:
        patch, pts = crop(volume, centers_zyx, start, size)
    for axis, do in enumerate(params.flips):
        if do:
            patch, pts = flip(patch, pts, axis)
    if params.rot90_k:
        patch, pts = rot90_xy(patch, pts, params.rot90_k)
    patch = scale_intensity(patch, params.scale, params.shift)  # also makes a fresh contiguous copy
    return np.ascontiguousarray(patch), pts
