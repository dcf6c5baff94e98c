"""Imaging physics as Fourier filters: CTF, the missing wedge, noise at a set SNR and the denoising low-pass.

All functions are pure functions of arrays. Frequencies are in cycles/Å on the half spectrum of
``scipy.fft.rfftn`` (last axis x non-negative). Tilt axis is y, so the wedge lies in (kz, kx).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

FFT_WORKERS: int = 2
TOMO_TYPES: tuple[str, ...] = ("wbp", "denoised")


@dataclass(frozen=True)
class ImagingParams:
    """The imaging of one run (drawn per run from ``simulation.difficulty.ImagingConfig``)."""

    snr: float  # signal power per labelled protein voxel / noise power per voxel, denoised tomogram (inf: no noise)
    defocus: float = 30_000.0  # Å, positive = underfocus
    bfactor: float = 150.0  # Å^2, envelope exp(-B k^2 / 4)
    phase_flip: bool = True  # CTF-corrected by phase flipping (protein dark at every frequency) or not
    max_tilt_deg: float = 60.0  # tilt series of ±max_tilt about y
    lowpass_fraction: float = 0.5  # denoising low-pass cutoff as a fraction of Nyquist
    noise_exponent: float = 1.0  # noise power spectrum ∝ |k|^exponent before the low-pass (1: weighted back-projection)
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.07
    family: str = "fourier"  # choices.ImagingFamily: Fourier filters, or a real-space tilt series
    tilt_step_deg: float = 3.0  # the tilt series' increment (the "tilt-series" family)


@dataclass(frozen=True)
class Reconstruction:
    """Tomograms by type, plus what the difficulty report needs: the noise-free denoised signal and the
    std of the noise in the denoised tomogram (per voxel)."""

    volumes: dict[str, np.ndarray]
    signal: np.ndarray  # [z, y, x] float32, the denoised tomogram without noise
    noise_std: float


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
        amplitude_contrast: float = 0.07, bfactor: float = 150.0, phase_flip: bool = False) -> np.ndarray:
    """CTF ``sqrt(1-A^2) sin(chi) + A cos(chi)`` times a B-factor envelope; ``k2`` in 1/Å^2.

    ``defocus`` in Å, positive = underfocus. A positive potential images dark where this is positive.
    ``phase_flip`` returns its absolute value: what a phase-flipped (CTF-corrected) reconstruction keeps.
    """
    lam = electron_wavelength(voltage_kv)
    cs = cs_mm * 1e7
    chi = np.float32(np.pi * lam * defocus) * k2 - np.float32(0.5 * np.pi * cs * lam ** 3) * k2 * k2
    out = np.float32(np.sqrt(1.0 - amplitude_contrast ** 2)) * np.sin(chi)
    out += np.float32(amplitude_contrast) * np.cos(chi)
    if phase_flip:
        np.abs(out, out=out)
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


def noise_colour(k2: np.ndarray, exponent: float, spacing: float) -> np.ndarray:
    """Amplitude filter giving white noise a power spectrum ∝ |k|^exponent (1 at Nyquist).

    Weighted back-projection multiplies each projection's white noise by the ramp |k| and spreads it over
    central slices whose density falls as 1/|k|: the tomogram's noise power grows like |k|. So large
    particles (low frequencies) stand out of the noise far more than white noise would let them.
    """
    nyquist2 = np.float32((0.5 / spacing) ** 2)
    return np.power(k2 / nyquist2, np.float32(exponent / 4.0)).astype(np.float32)


def noise_std_for_snr(signal_power: float, snr: float) -> float:
    """Per-voxel noise std giving ``signal_power / std^2 == snr`` (0 for an infinite SNR)."""
    if not snr > 0:
        raise ValueError(f"snr must be > 0 (math.inf for no noise), got {snr}")
    return 0.0 if math.isinf(snr) else math.sqrt(signal_power / snr)


def _irfft(spectrum: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return sfft.irfftn(spectrum, s=shape, norm="ortho", workers=FFT_WORKERS).astype(np.float32)


def reconstruct(potential: np.ndarray, rng: np.random.Generator, params: ImagingParams, spacing: float,
                protein_mask: np.ndarray, tomo_types: tuple[str, ...] = ("denoised",)) -> Reconstruction:
    """Potential ``[z, y, x]`` -> tomograms by type ("wbp": CTF + wedge + noise; "denoised": then low-pass).

    Noise is added after the CTF and before the wedge, so it is missing from the wedge too, as in a real
    reconstruction; its power spectrum grows like ``|k|^noise_exponent`` (``noise_colour``). Its level is
    set from the data, not by a constant: the std of the noise in the denoised tomogram is ``sqrt(P / snr)``
    where ``P`` is the mean squared noise-free denoised signal over ``protein_mask`` (the labelled protein
    voxels; a volume without any uses all its voxels). The wbp tomogram carries the same noise before the
    low-pass, so it is noisier.
    """
    unknown = sorted(set(tomo_types) - set(TOMO_TYPES))
    if unknown:
        raise ValueError(f"cannot simulate tomogram types {unknown}; known: {', '.join(TOMO_TYPES)}")
    shape = potential.shape
    kz, ky, kx = frequency_grid(shape, spacing)
    k2 = kz * kz + ky * ky + kx * kx  # [nz, ny, nx//2+1]
    spectrum = sfft.rfftn(potential - np.float32(potential.mean()), norm="ortho", workers=FFT_WORKERS)
    transfer = ctf(k2, params.defocus, params.voltage_kv, params.cs_mm, params.amplitude_contrast,
                   params.bfactor, params.phase_flip)
    np.negative(transfer, out=transfer)  # positive potential (protein) images dark
    transfer *= missing_wedge_mask(kz, kx, params.max_tilt_deg)
    spectrum *= transfer
    del transfer
    denoise = lowpass(k2, params.lowpass_fraction * 0.5 / spacing)
    signal = _irfft(spectrum * denoise, shape)
    region = signal[protein_mask] if protein_mask.any() else signal
    noise_std = noise_std_for_snr(float(np.mean(np.square(region, dtype=np.float64))), params.snr)
    out: dict[str, np.ndarray] = {}
    if noise_std == 0.0:
        if "wbp" in tomo_types:
            out["wbp"] = _irfft(spectrum, shape)
        if "denoised" in tomo_types:
            out["denoised"] = signal.copy()
        return Reconstruction(out, signal, 0.0)
    white = rng.standard_normal(shape, dtype=np.float32)
    noise_spectrum = sfft.rfftn(white, norm="ortho", workers=FFT_WORKERS)
    del white
    noise_spectrum *= missing_wedge_mask(kz, kx, params.max_tilt_deg)
    noise_spectrum *= noise_colour(k2, params.noise_exponent, spacing)
    filtered = _irfft(noise_spectrum * denoise, shape)
    scale = np.float32(noise_std / max(float(filtered.std(dtype=np.float64)), 1e-30))
    if "wbp" in tomo_types:
        noise_spectrum *= scale
        noise_spectrum += spectrum
        out["wbp"] = _irfft(noise_spectrum, shape)
    if "denoised" in tomo_types:
        filtered *= scale
        filtered += signal
        out["denoised"] = filtered
    return Reconstruction(out, signal, noise_std)
