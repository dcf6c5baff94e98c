"""The second imaging family: a tilt series imaged and reconstructed in real space, as a microscope and
IMOD/AreTomo do it, structurally unlike the Fourier-filter family of ``simulation.imaging``.

The potential is projected at every tilt of a dose-symmetric series about y (linear splatting onto a detector
as wide as the volume: a tilted slab leaves its field of view); each projection gets its own CTF (per-tilt
defocus, a B-factor that grows with the dose already received) and its own shot noise; the projections are
optionally phase-flipped, ramp-filtered and back-projected (weighted back-projection, the exact adjoint of the
projector); the missing wedge, the streaks of a finite number of tilts and the noise's texture come from that
geometry, not from a mask. The "denoised" tomogram is a 3x3x3 median then a Gaussian low-pass: a non-linear
denoiser, where the first family's is a linear Fourier low-pass.

All functions are pure functions of arrays (``reconstruct_tilt_series`` draws its noise from ``rng``).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft
from scipy import ndimage, sparse

from simulation.imaging import ImagingParams, Reconstruction, ctf, noise_std_for_snr, TOMO_TYPES

DOSE_B_PER_TILT = 4.0
"""Å^2 of B-factor added by each earlier exposure (radiation damage of a dose-symmetric series)."""
DEFOCUS_JITTER = 0.03
"""Relative std of each tilt's defocus around the run's (focus tracking is never exact)."""
MEDIAN_SIZE = 3


def tilt_angles(max_tilt_deg: float, step_deg: float) -> np.ndarray:
    """Tilt angles (degrees) from -max to +max in ``step`` increments, 0 included, sorted."""
    n = int(math.floor(max_tilt_deg / step_deg + 1e-9))
    return np.arange(-n, n + 1, dtype=np.float64) * step_deg


def exposure_order(angles: np.ndarray) -> np.ndarray:
    """Each tilt's place in a dose-symmetric acquisition (0 first, then ±step, ±2 step, ...)."""
    order = np.argsort(np.abs(angles) + 1e-6 * (angles < 0), kind="stable")
    ranks = np.empty(len(angles), dtype=np.int64)
    ranks[order] = np.arange(len(angles))
    return ranks


def projector(nz: int, nx: int, angle_deg: float) -> sparse.csr_matrix:
    """The ``[nu, nz * nx]`` matrix that projects a ``[z, x]`` plane at ``angle_deg`` about y onto a detector of
    ``nu = nx`` pixels by linear splatting: voxel (z, x) lands at ``u = (x - xc) cos + (z - zc) sin + uc``.
    Its transpose is the back-projector (linear interpolation), so the pair is exactly adjoint."""
    theta = math.radians(angle_deg)
    z, x = np.meshgrid(np.arange(nz, dtype=np.float64), np.arange(nx, dtype=np.float64), indexing="ij")
    centre_z, centre_x = (nz - 1) / 2, (nx - 1) / 2
    u = (x - centre_x) * math.cos(theta) + (z - centre_z) * math.sin(theta) + centre_x
    lower = np.floor(u).astype(np.int64)
    frac = u - lower
    columns = np.arange(nz * nx)
    rows = np.concatenate([lower.ravel(), lower.ravel() + 1])
    weights = np.concatenate([(1 - frac).ravel(), frac.ravel()])
    cols = np.concatenate([columns, columns])
    inside = (rows >= 0) & (rows < nx)
    return sparse.csr_matrix((weights[inside], (rows[inside], cols[inside])), shape=(nx, nz * nx))


def project(volume: np.ndarray, matrix: sparse.csr_matrix) -> np.ndarray:
    """``[z, y, x]`` -> its projection ``[y, u]`` by one tilt's ``projector``."""
    nz, ny, nx = volume.shape
    planes = np.ascontiguousarray(volume.transpose(1, 0, 2)).reshape(ny, nz * nx)  # [y, z*x]
    return np.asarray((matrix @ planes.T).T, dtype=np.float32)


def backproject(projection: np.ndarray, matrix: sparse.csr_matrix, shape: tuple[int, int, int]) -> np.ndarray:
    """The adjoint of ``project``: a ``[y, u]`` projection smeared back into a ``[z, y, x]`` volume."""
    nz, ny, nx = shape
    planes = np.asarray((matrix.T @ projection.T.astype(np.float64)).T)  # [y, z*x]
    return planes.reshape(ny, nz, nx).transpose(1, 0, 2).astype(np.float32)


def ramp_filter(projection: np.ndarray) -> np.ndarray:
    """Weighted back-projection's filter along u: ``|k|`` with a cosine roll-off to Nyquist (Shepp-Logan-like)."""
    n = projection.shape[-1]
    k = np.abs(sfft.rfftfreq(n)).astype(np.float32)  # cycles/pixel, 0..0.5
    weight = k * np.cos(np.pi * k).astype(np.float32)
    spectrum = sfft.rfft(projection, axis=-1) * weight
    return sfft.irfft(spectrum, n=n, axis=-1).astype(np.float32)


def ctf_2d(shape: tuple[int, int], spacing: float, defocus: float, bfactor: float,
           params: ImagingParams) -> np.ndarray:
    """The signed CTF on a ``[y, u]`` projection's rfft grid (protein, positive potential, images dark)."""
    ky = sfft.fftfreq(shape[0], d=spacing).astype(np.float32)[:, None]
    ku = sfft.rfftfreq(shape[1], d=spacing).astype(np.float32)[None, :]
    return -ctf(ky * ky + ku * ku, defocus, params.voltage_kv, params.cs_mm, params.amplitude_contrast, bfactor)


def _imaged(projection: np.ndarray, transfer: np.ndarray, noise: np.ndarray | None, flip: bool) -> np.ndarray:
    """One projection through its CTF, plus shot noise, then phase-flipped (CTF correction) when asked."""
    spectrum = sfft.rfft2(projection) * transfer
    if noise is not None:
        spectrum += sfft.rfft2(noise)
    if flip:  # the CTF's sign undone: protein dark at every frequency, as in the first family
        spectrum *= -np.sign(transfer)
    return sfft.irfft2(spectrum, s=projection.shape).astype(np.float32)


def weighted_backprojection(potential: np.ndarray, params: ImagingParams,
                            noise: list[np.ndarray] | None = None, transfers: list[np.ndarray] | None = None,
                            matrices: list[sparse.csr_matrix] | None = None) -> np.ndarray:
    """The WBP tomogram of ``potential`` imaged by the series (``noise``: one ``[y, u]`` array per tilt)."""
    nz, ny, nx = potential.shape
    out = np.zeros(potential.shape, dtype=np.float32)
    for i, (matrix, transfer) in enumerate(zip(matrices, transfers)):
        projection = project(potential, matrix) if potential.any() else np.zeros((ny, nx), np.float32)
        imaged = _imaged(projection, transfer, None if noise is None else noise[i], params.phase_flip)
        out += backproject(ramp_filter(imaged), matrix, potential.shape)
    return out * np.float32(math.pi / (2 * len(matrices)))


def denoise(volume: np.ndarray, params: ImagingParams, linear_only: bool = False) -> np.ndarray:
    """The second family's denoiser: a 3x3x3 median, then a Gaussian low-pass at ``lowpass_fraction`` of
    Nyquist (``linear_only``: the Gaussian alone, for setting the noise level)."""
    sigma = 1.0 / (2 * math.pi * params.lowpass_fraction * 0.5)  # voxels: a Gaussian whose FT falls to e^-1/2 there
    smoothed = volume if linear_only else ndimage.median_filter(volume, size=MEDIAN_SIZE, mode="mirror")
    return ndimage.gaussian_filter(smoothed, sigma, mode="mirror").astype(np.float32)


def reconstruct_tilt_series(potential: np.ndarray, rng: np.random.Generator, params: ImagingParams, spacing: float,
                            protein_mask: np.ndarray, tomo_types: tuple[str, ...] = ("denoised",)) -> Reconstruction:
    """Potential ``[z, y, x]`` -> tomograms by type ("wbp", "denoised") through the tilt series. The shot noise
    is set so that the denoised tomogram's SNR over ``protein_mask`` is ``params.snr``, as in the first family
    (set through the linear part of the pipeline, then corrected once for the median's effect)."""
    unknown = sorted(set(tomo_types) - set(TOMO_TYPES))
    if unknown:
        raise ValueError(f"cannot simulate tomogram types {unknown}; known: {', '.join(TOMO_TYPES)}")
    nz, ny, nx = potential.shape
    angles = tilt_angles(params.max_tilt_deg, params.tilt_step_deg)
    exposure = exposure_order(angles)
    matrices = [projector(nz, nx, a) for a in angles]
    transfers = [ctf_2d((ny, nx), spacing, params.defocus * (1 + DEFOCUS_JITTER * rng.standard_normal()),
                        params.bfactor + DOSE_B_PER_TILT * exposure[i], params) for i in range(len(angles))]
    centred = potential - np.float32(potential.mean())
    wbp_signal = weighted_backprojection(centred, params, None, transfers, matrices)
    signal = denoise(wbp_signal, params)
    region = signal[protein_mask] if protein_mask.any() else signal
    power = float(np.mean(np.square(region, dtype=np.float64)))
    if math.isinf(params.snr):
        volumes = {"wbp": wbp_signal, "denoised": signal}
        return Reconstruction({t: volumes[t] for t in tomo_types}, signal, 0.0)
    shots = [rng.standard_normal((ny, nx), dtype=np.float32) for _ in angles]
    wbp_noise = weighted_backprojection(np.zeros_like(centred), params, shots, transfers, matrices)
    scale = noise_std_for_snr(power, params.snr) / max(float(denoise(wbp_noise, params, True).std()), 1e-30)
    for _ in range(2):  # the median shrinks the noise too: correct the level on the real pipeline
        denoised = denoise(wbp_signal + np.float32(scale) * wbp_noise, params)
        measured = float((denoised - signal).std())
        scale *= noise_std_for_snr(power, params.snr) / max(measured, 1e-30)
    denoised = denoise(wbp_signal + np.float32(scale) * wbp_noise, params)
    volumes = {"wbp": wbp_signal + np.float32(scale) * wbp_noise, "denoised": denoised}
    return Reconstruction({t: volumes[t] for t in tomo_types}, signal, float((denoised - signal).std()))
