"""Imaging physics as Fourier filters: CTF, the ±60° missing wedge, noise and the denoising low-pass.

All functions are pure functions of arrays. Frequencies are in cycles/Å on the half spectrum of
``scipy.fft.rfftn`` (last axis x non-negative). Tilt axis is y, so the wedge lies in (kz, kx).
"""
from __future__ import annotations

import numpy as np
import scipy.fft as sfft

FFT_WORKERS: int = 2


def electron_wavelength(voltage_kv: float) -> float:
    """Relativistic electron wavelength in Å (0.0197 Å at 300 kV)."""
    volts = voltage_kv * 1e3
    return 12.2643 / np.sqrt(volts * (1.0 + 0.97845e-6 * volts))


def frequency_grid(shape: tuple[int, int, int], spacing: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcastable ``kz [nz,1,1], ky [1,ny,1], kx [1,1,nx//2+1]`` (float32, cycles/Å) of rfftn."""
    kz = sfft.fftfreq(shape[0], d=spacing).astype(np.float32)[:, None, None]
    ky = sfft.fftfreq(shape[1], d=spacing).astype(np.float32)[None, :, None]
    kx = sfft.rfftfreq(shape[2], d=spacing).astype(np.float32)[None, None, :]
    return kz, ky, kx


def ctf(k2: np.ndarray, defocus: float, voltage_kv: float = 300.0, cs_mm: float = 2.7,
        amplitude_contrast: float = 0.07, bfactor: float = 150.0) -> np.ndarray:
    """Signed CTF ``sqrt(1-A^2) sin(chi) + A cos(chi)`` times a B-factor envelope; ``k2`` in 1/Å^2.

    ``defocus`` in Å, positive = underfocus. A positive potential images dark where this is positive.
    """
    lam = electron_wavelength(voltage_kv)
    cs = cs_mm * 1e7
    chi = np.float32(np.pi * lam * defocus) * k2 - np.float32(0.5 * np.pi * cs * lam ** 3) * k2 * k2
    out = np.float32(np.sqrt(1.0 - amplitude_contrast ** 2)) * np.sin(chi)
    out += np.float32(amplitude_contrast) * np.cos(chi)
    out *= np.exp(np.float32(-bfactor / 4.0) * k2)
    return out.astype(np.float32)


def missing_wedge_mask(kz: np.ndarray, kx: np.ndarray, max_tilt_deg: float = 60.0) -> np.ndarray:
    """True where a ±``max_tilt_deg`` tilt series about y measures: ``|kz| <= tan(max_tilt)·|kx|``.

    The missing wedge is the rest: a double cone of half-angle 90° - max_tilt around kz. Broadcasts
    to ``[nz, 1, nx//2+1]``; the DC term counts as measured.
    """
    measured = np.abs(kz) <= np.float32(np.tan(np.deg2rad(max_tilt_deg))) * np.abs(kx)
    return measured | ((kz == 0) & (kx == 0))


def lowpass(k2: np.ndarray, cutoff: float) -> np.ndarray:
    """Gaussian low-pass ``exp(-k^2 / (2 cutoff^2))`` (cutoff in cycles/Å), as a denoiser leaves it."""
    return np.exp(k2 * np.float32(-0.5 / cutoff ** 2)).astype(np.float32)


def reconstruct(potential: np.ndarray, rng: np.random.Generator, defocus: float, noise_sigma: float,
                spacing: float, tomo_types: tuple[str, ...] = ("denoised",),
                max_tilt_deg: float = 60.0, lowpass_fraction: float = 0.5) -> dict[str, np.ndarray]:
    """Potential ``[z, y, x]`` -> tomograms by type ("wbp": CTF + wedge + noise; "denoised": then low-pass).

    The CTF is phase-flipped (as in CTF-corrected reconstructions), so protein (positive potential)
    is dark at every frequency. White noise of std ``noise_sigma`` per voxel is added before the
    wedge, so noise is missing from the wedge too, as in a real reconstruction.
    """
    unknown = sorted(set(tomo_types) - {"wbp", "denoised"})
    if unknown:
        raise ValueError(f"cannot simulate tomogram types {unknown}; known: wbp, denoised")
    kz, ky, kx = frequency_grid(potential.shape, spacing)
    k2 = kz * kz + ky * ky + kx * kx  # [nz, ny, nx//2+1]
    spectrum = sfft.rfftn(potential - np.float32(potential.mean()), norm="ortho", workers=FFT_WORKERS)
    transfer = np.abs(ctf(k2, defocus))
    np.negative(transfer, out=transfer)
    spectrum *= transfer
    del transfer
    if noise_sigma > 0:
        noise = rng.standard_normal(potential.shape, dtype=np.float32)
        noise *= np.float32(noise_sigma)
        spectrum += sfft.rfftn(noise, norm="ortho", workers=FFT_WORKERS)
        del noise
    spectrum *= missing_wedge_mask(kz, kx, max_tilt_deg)
    out: dict[str, np.ndarray] = {}
    if "wbp" in tomo_types:
        out["wbp"] = sfft.irfftn(spectrum, s=potential.shape, norm="ortho", workers=FFT_WORKERS).astype(np.float32)
    if "denoised" in tomo_types:
        spectrum *= lowpass(k2, lowpass_fraction * 0.5 / spacing)
        out["denoised"] = sfft.irfftn(spectrum, s=potential.shape, norm="ortho",
                                      workers=FFT_WORKERS).astype(np.float32)
    return out
