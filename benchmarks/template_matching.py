"""The classical floor: template matching by local normalised cross-correlation (NCC) with rotation-averaged
templates, one score map per class. Pure functions of arrays, so tests call them on tiny volumes.

The templates come from the data, not from a physics model: the mean of the training runs' subvolumes
around each class's picks (random orientations, so already close to a rotation average, and carrying the
data's own CTF, missing wedge and low-pass), then averaged over all rotations (radial profile). This is
what a cryo-ET researcher does without a GPU: no network, no knowledge of the imaging, only the picks.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.fft as sfft
from scipy.ndimage import gaussian_filter

from particles import CZII_PARTICLES, ParticleSet

TEMPLATE_REACH: float = 1.3
"""Template box half-side in units of the class radius: the particle plus a ring of its surroundings."""

MASK_REACH: float = 1.2
"""NCC mask radius in units of the class radius."""

SMOOTH_REACH: float = 0.25
"""Optional Gaussian smoothing of a class's NCC map, sigma in units of the class radius: an elongated
particle (thyroglobulin) correlates best on its two lobes, ~55 Å either side of its centre; smoothing at
about a quarter radius merges them into one peak at the centre (and blunts the sharp peaks of shells)."""

_PROFILE_BINS_PER_VOXEL = 2
FFT_WORKERS = 2


def radial_distances(half: int) -> np.ndarray:
    """``[2h+1]^3`` distances (voxels) from the centre voxel."""
    axis = np.arange(-half, half + 1, dtype=np.float64)
    return np.sqrt(axis[:, None, None] ** 2 + axis[None, :, None] ** 2 + axis[None, None, :] ** 2)


def spherical_average(box: np.ndarray) -> np.ndarray:
    """The rotation average of a cubic box ``[n, n, n]`` (n odd) about its centre: mean over shells of
    width 1/2 voxel (placed at their voxels' mean radius), read back by linear interpolation."""
    n = box.shape[0]
    if box.ndim != 3 or len(set(box.shape)) != 1 or n % 2 == 0:
        raise ValueError(f"spherical_average needs an odd cubic box, got shape {box.shape}")
    r = radial_distances(n // 2)
    bins = np.rint(r * _PROFILE_BINS_PER_VOXEL).astype(np.int64).reshape(-1)
    sums = np.bincount(bins, weights=box.reshape(-1).astype(np.float64))
    counts = np.bincount(bins)
    filled = counts > 0
    radii = np.bincount(bins, weights=r.reshape(-1))[filled] / counts[filled]  # mean radius of each shell
    profile = sums[filled] / counts[filled]
    return np.interp(r, radii, profile).astype(np.float32)


def average_subvolumes(volumes: Sequence[np.ndarray], centres_zyx: Sequence[np.ndarray],
                       half: int) -> np.ndarray | None:
    """Mean of the ``[2h+1]^3`` boxes around the (rounded) centres of every volume; boxes reaching past a
    border are padded with the volume's mean. None when there are no centres."""
    total = np.zeros((2 * half + 1,) * 3, dtype=np.float64)
    count = 0
    for volume, centres in zip(volumes, centres_zyx):
        centres = np.rint(np.asarray(centres, dtype=np.float64).reshape(-1, 3)).astype(np.int64)
        if not len(centres):
            continue
        padded = np.pad(volume, half, mode="constant", constant_values=float(volume.mean()))
        for z, y, x in centres + half:  # one slice per particle: O(particles), not O(voxels)
            total += padded[z - half:z + half + 1, y - half:y + half + 1, x - half:x + half + 1]
        count += len(centres)
    return None if count == 0 else (total / count).astype(np.float32)


class Correlator:
    """Correlations of one volume with many small kernels: the spectra of the volume and of its square are
    computed once (float32, zero padding beyond the volume), then each kernel costs one forward FFT and
    one inverse FFT per product."""

    def __init__(self, volume: np.ndarray, max_kernel: int) -> None:
        self.shape, self.max_kernel = volume.shape, max_kernel
        self.size = tuple(sfft.next_fast_len(n + max_kernel - 1, real=True) for n in volume.shape)
        v = volume.astype(np.float32)
        self.spectrum = sfft.rfftn(v, self.size, workers=FFT_WORKERS)
        self.square_spectrum = sfft.rfftn(v * v, self.size, workers=FFT_WORKERS)

    def kernel_spectrum(self, kernel: np.ndarray) -> np.ndarray:
        """Spectrum of a cubic kernel (odd side), flipped so products give correlations."""
        if kernel.shape[0] > self.max_kernel or kernel.shape[0] % 2 == 0:
            raise ValueError(f"kernel of side {kernel.shape[0]}: odd sides up to the Correlator's max_kernel")
        return sfft.rfftn(kernel[::-1, ::-1, ::-1].astype(np.float32), self.size, workers=FFT_WORKERS)

    def correlate(self, volume_spectrum: np.ndarray, kernel_spectrum: np.ndarray, half: int) -> np.ndarray:
        """``sum_m k(m) v(x+m)`` at every voxel x of the volume (kernel centred at its middle voxel)."""
        full = sfft.irfftn(volume_spectrum * kernel_spectrum, self.size, workers=FFT_WORKERS)
        return full[half:half + self.shape[0], half:half + self.shape[1], half:half + self.shape[2]]


def local_ncc(volume: np.ndarray | Correlator, template: np.ndarray, mask_radius: float) -> np.ndarray:
    """Normalised cross-correlation of a template with the volume under a spherical mask, at every voxel.

    ``ncc(x) = sum_m t'(m) v(x+m) / (|t'| sqrt(sum_m (v(x+m) - mean_x)^2))`` over mask voxels ``m``, with
    ``t'`` the template minus its mean inside the mask. Values lie in [-1, 1]; outside the volume counts
    as zero (a z-scored volume's mean). Pass a ``Correlator`` to share the volume's FFTs across templates.
    """
    half = template.shape[0] // 2
    mask = (radial_distances(half) <= mask_radius).astype(np.float64)
    n = mask.sum()
    if n < 2:
        raise ValueError(f"NCC mask of radius {mask_radius} voxels holds {int(n)} voxel(s); need at least 2")
    t = template.astype(np.float64) * mask
    t -= mask * (t.sum() / n)
    norm = np.sqrt((t * t).sum())
    if norm == 0:
        raise ValueError("template is constant inside its mask: nothing to correlate")
    corr = volume if isinstance(volume, Correlator) else Correlator(volume, template.shape[0])
    mask_spectrum = corr.kernel_spectrum(mask)
    numerator = corr.correlate(corr.spectrum, corr.kernel_spectrum(t / norm), half)
    local_sum = corr.correlate(corr.spectrum, mask_spectrum, half)
    local_square = corr.correlate(corr.square_spectrum, mask_spectrum, half)
    variance = np.maximum(local_square - local_sum ** 2 / np.float32(n), np.float32(1e-6 * n))
    return (numerator / np.sqrt(variance)).astype(np.float32)


def class_templates(volumes: Sequence[np.ndarray], centres: Sequence[Mapping[str, np.ndarray]],
                    spacing: float, particles: ParticleSet = CZII_PARTICLES) -> dict[str, np.ndarray]:
    """Class name -> rotation-averaged mean subvolume (box half-side TEMPLATE_REACH x radius) over the runs'
    picks of that class. Classes with no picks are left out."""
    out = {}
    for p in particles.particles:
        half = int(np.ceil(TEMPLATE_REACH * p.radius / spacing))
        mean = average_subvolumes(volumes, [c.get(p.name, np.zeros((0, 3))) for c in centres], half)
        if mean is not None:
            out[p.name] = spherical_average(mean)
    return out


def score_maps(volume: np.ndarray, templates: Mapping[str, np.ndarray], spacing: float,
               particles: ParticleSet = CZII_PARTICLES) -> np.ndarray:
    """``[C, D, H, W]`` NCC maps, channel = particle channel; a class without a template scores -1."""
    out = np.full((particles.num_classes, *volume.shape), -1.0, dtype=np.float32)
    if not templates:
        return out
    corr = Correlator(volume, max(t.shape[0] for t in templates.values()))
    for name, template in templates.items():
        p = particles.get(name)
        out[p.channel] = local_ncc(corr, template, MASK_REACH * p.radius / spacing)
    return out


def smooth_maps(maps: np.ndarray, smoothed: Mapping[str, bool], spacing: float,
                particles: ParticleSet = CZII_PARTICLES) -> np.ndarray:
    """A copy of ``[C, D, H, W]`` score maps where the classes marked True are smoothed at SMOOTH_REACH x radius."""
    out = maps.copy()
    for p in particles.particles:
        if smoothed.get(p.name, False):
            out[p.channel] = gaussian_filter(maps[p.channel], SMOOTH_REACH * p.radius / spacing, mode="nearest")
    return out
