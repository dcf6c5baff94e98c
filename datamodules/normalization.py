"""Per-tomogram intensity normalisation, so every run feeds the network the same value range."""
from __future__ import annotations

import numpy as np

from choices import NormalizationMode

PERCENTILES: tuple[float, float] = (0.5, 99.5)
_MAX_STAT_SAMPLES = 4_000_000  # percentiles from an evenly strided subsample: exact enough, 10x faster


def normalize(volume: np.ndarray, mode: NormalizationMode = "zscore",
              percentiles: tuple[float, float] = PERCENTILES) -> np.ndarray:
    """Return a float32 copy: ``zscore`` -> mean 0, std 1; ``percentile`` -> clip to the percentiles, map to [-1, 1]."""
    data = np.asarray(volume, dtype=np.float32)
    if data.size == 0:
        raise ValueError("cannot normalise an empty volume")
    if mode == "zscore":
        mean = float(data.mean(dtype=np.float64))
        std = float(data.std(dtype=np.float64))
        if not np.isfinite(std) or std <= 0:
            raise ValueError(f"volume has no contrast (std {std}); cannot z-score it")
        return ((data - np.float32(mean)) / np.float32(std)).astype(np.float32, copy=False)
    if mode == "percentile":
        low_q, high_q = percentiles
        if not 0 <= low_q < high_q <= 100:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
        flat = data.reshape(-1)
        sample = flat[:: max(1, flat.size // _MAX_STAT_SAMPLES)]
        low, high = (float(v) for v in np.percentile(sample, [low_q, high_q]))
        if not high > low:
            raise ValueError(f"volume has no contrast between percentiles {percentiles} ({low} .. {high})")
        mid, half = np.float32((high + low) / 2), np.float32((high - low) / 2)
        out = ((np.clip(data, low, high) - mid) / half).astype(np.float32, copy=False)
        return np.clip(out, -1.0, 1.0, out=out)  # rounding could leave 1 + 1e-7
    raise ValueError(f"unknown normalization mode {mode!r}; use 'zscore' or 'percentile'")
