"""Difficulty as a physical quantity: the SNR of the protein signal, named levels, and per-run randomised
imaging around a level (domain randomisation), plus the per-class report written beside every dataset.

SNR here is the mean squared noise-free signal of the denoised tomogram over the labelled protein voxels
(after CTF, missing wedge and low-pass) divided by the noise variance per voxel of the same tomogram.
Per class, the same ratio over that class's voxels; CNR is the class's mean signal over its voxels
divided by the noise std (negative: darker than the ice).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from choices import ImagingFamily, check_choice
from particles import CZII_PARTICLES, ParticleSet
from simulation.imaging import ImagingParams

DIFFICULTY_LEVELS: dict[str, float] = {"easy": 8.0, "realistic": 2.0, "hard": 0.5}
"""Named levels -> SNR per labelled protein voxel of the first (fourier) family. Calibrated with the classical
baseline (benchmarks/classical_baseline.py, BENCHMARKS.md): realistic ~0.65-0.75, hard ~0.5-0.6."""
FAMILY_LEVELS: dict[str, dict[str, float]] = {
    "fourier": DIFFICULTY_LEVELS,
    "tilt-series": {"easy": 32.0, "realistic": 8.0, "hard": 3.0},
}
"""The named levels of each imaging family, each calibrated the same way: the matched filter finds the second
family's particles less well at a given SNR (its noise is streaky and median-filtered), so its levels sit
higher (2026-12-06, seed 0, 7 training runs: SNR 8 -> 0.67, 4 -> 0.64, 2 -> 0.59, 0.5 -> 0.23 on the training
runs' leave-one-out fit; easy is 4x realistic, as in the first family, not measured)."""

DEFAULT_DIFFICULTY: str = "realistic"


def resolve_snr(difficulty: str | float, family: str = "fourier") -> float:
    """A level name (easy, realistic, hard: the ``family``'s calibrated SNR), a number (the SNR) or 'inf' (no
    noise) -> SNR."""
    levels = FAMILY_LEVELS[check_choice(family, ImagingFamily, "imaging family")]
    if isinstance(difficulty, str) and difficulty in levels:
        return levels[difficulty]
    try:
        snr = float(difficulty)
    except (TypeError, ValueError):
        raise ValueError(f"difficulty {difficulty!r}: expected one of {', '.join(DIFFICULTY_LEVELS)} "
                         "or a positive SNR (signal/noise power per protein voxel; inf for no noise)") from None
    if not snr > 0:
        raise ValueError(f"difficulty {difficulty!r}: the SNR must be > 0 (inf for no noise)")
    return snr


def snr_range(difficulty: str, family: str = "fourier") -> tuple[float, float] | None:
    """``"LOW:HIGH"`` (numbers or level names, e.g. ``1:8`` or ``hard:easy``) -> (centre SNR, spread) such that
    a run's SNR ``centre * exp(U(-spread, spread))`` is log-uniform over [LOW, HIGH]: a dataset of every
    difficulty (pre-training). None when ``difficulty`` is one level, not a range."""
    if not isinstance(difficulty, str) or ":" not in difficulty:
        return None
    parts = difficulty.split(":")
    if len(parts) != 2:
        raise ValueError(f"difficulty {difficulty!r}: a range is LOW:HIGH (e.g. 1:8 or hard:easy)")
    low, high = (resolve_snr(p.strip(), family) for p in parts)
    if not low <= high or math.isinf(high):
        raise ValueError(f"difficulty {difficulty!r}: a range needs finite LOW <= HIGH, got {low} and {high}")
    return math.sqrt(low * high), math.log(high / low) / 2


def _field(default: object, help: str) -> object:
    """A dataclass field whose description ``simulate.py --help`` shows."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class ImagingConfig:
    """Per-run imaging drawn around a difficulty: each run of a dataset gets its own defocus, B-factor,
    CTF correction, tilt range, low-pass and SNR, so a network trained on it meets varied physics."""

    snr: float = _field(DIFFICULTY_LEVELS[DEFAULT_DIFFICULTY], "SNR per labelled protein voxel (set by --difficulty)")
    snr_spread: float = _field(0.25, "per-run SNR = snr * exp(U(-spread, spread))")
    defocus_um: tuple[float, float] = _field((2.0, 5.0), "underfocus range, µm")
    bfactor: tuple[float, float] = _field((50.0, 250.0), "B-factor range, Å^2")
    phase_flip_prob: float = _field(0.5, "probability that a run is CTF-corrected by phase flipping "
                                         "(otherwise the CTF's sign changes are left in)")
    max_tilt_deg: tuple[float, float] = _field((55.0, 65.0), "tilt range ±max, degrees (the missing wedge)")
    lowpass_fraction: tuple[float, float] = _field((0.35, 0.65), "denoising low-pass cutoff, fraction of Nyquist")
    noise_exponent: tuple[float, float] = _field((0.75, 1.25), "noise power ∝ |k|^exponent (1: weighted "
                                                              "back-projection; 0: white)")
    family: str = _field("fourier", "imaging family: fourier (CTF, missing wedge and coloured noise as Fourier "
                                    "filters, Gaussian low-pass) or tilt-series (a real-space tilt series: "
                                    "per-tilt CTF and dose, shot noise, weighted back-projection, median + "
                                    "Gaussian denoising)")
    tilt_step_deg: tuple[float, float] = _field((2.0, 4.0), "tilt increment range, degrees (tilt-series family)")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and (len(value) != 2 or value[0] > value[1] or value[0] < 0):
                raise ValueError(f"imaging {f.name}: expected a range (low, high) with 0 <= low <= high, got {value}")
        if not self.snr > 0 or self.snr_spread < 0 or not 0 <= self.phase_flip_prob <= 1:
            raise ValueError(f"imaging: need snr > 0, snr_spread >= 0, 0 <= phase_flip_prob <= 1; got {self}")
        check_choice(self.family, ImagingFamily, "imaging family")
        if self.tilt_step_deg[0] <= 0:
            raise ValueError(f"imaging: tilt_step_deg must be > 0; got {self.tilt_step_deg}")
        if self.lowpass_fraction[0] <= 0 or self.max_tilt_deg[1] >= 90:
            raise ValueError(f"imaging: lowpass_fraction must be > 0 and max_tilt_deg < 90; got {self}")

    def draw(self, rng: np.random.Generator) -> ImagingParams:
        """One run's imaging parameters."""
        snr = self.snr if math.isinf(self.snr) else self.snr * math.exp(rng.uniform(-self.snr_spread, self.snr_spread))
        return ImagingParams(
            snr=snr, defocus=1e4 * rng.uniform(*self.defocus_um), bfactor=rng.uniform(*self.bfactor),
            phase_flip=bool(rng.random() < self.phase_flip_prob), max_tilt_deg=rng.uniform(*self.max_tilt_deg),
            lowpass_fraction=rng.uniform(*self.lowpass_fraction), noise_exponent=rng.uniform(*self.noise_exponent),
            family=self.family,  # the tilt step is drawn for that family only: fourier runs keep their bytes
            tilt_step_deg=rng.uniform(*self.tilt_step_deg) if self.family == "tilt-series" else 3.0)


def class_difficulty(signal: np.ndarray, noise_std: float, labels: np.ndarray,
                     particles: ParticleSet = CZII_PARTICLES) -> dict[str, dict[str, float]]:
    """Per particle class present in ``labels`` (0 = none, else particle label): SNR, SNR in dB, CNR and
    voxel count. ``signal`` is the noise-free tomogram and ``noise_std`` the noise std per voxel."""
    size = particles.num_classes + 1
    counts = np.bincount(labels.reshape(-1), minlength=size)
    flat_labels, flat_signal = labels.reshape(-1), signal.reshape(-1).astype(np.float64)
    sums = np.bincount(flat_labels, weights=flat_signal, minlength=size)
    squares = np.bincount(flat_labels, weights=flat_signal ** 2, minlength=size)
    out = {}
    for p in particles.particles:
        n = int(counts[p.label])
        if n == 0:
            continue
        power, mean = squares[p.label] / n, sums[p.label] / n
        snr = math.inf if noise_std == 0 else power / noise_std ** 2
        out[p.name] = {"snr": snr, "snr_db": 10 * math.log10(snr) if snr > 0 else -math.inf,
                       "cnr": math.copysign(math.inf, mean) if noise_std == 0 else mean / noise_std,
                       "voxels": n}
    return out
