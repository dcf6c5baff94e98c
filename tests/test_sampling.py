"""Patch sampling: positive patches hold a particle, class frequencies follow the weights."""
from __future__ import annotations

import numpy as np
import pytest

from config.experiment import default_class_weights
from datamodules.sampling import PatchSampler
from particles import CZII_PARTICLES, NUM_CLASSES, PARTICLES

SHAPES = [(40, 80, 80), (40, 80, 80)]
PATCH = (16, 32, 32)


def _picks(seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    centers, channels = [], []
    for shape in SHAPES:
        n = 30
        centers.append(rng.uniform(0, np.array(shape) - 1, size=(n, 3)))
        channels.append(rng.integers(0, NUM_CLASSES, size=n))
    return centers, channels


def test_positive_fraction_one_every_patch_holds_its_particle() -> None:
    centers, channels = _picks()
    sampler = PatchSampler(SHAPES, channels, centers, PATCH, 1.0, default_class_weights(), particles=CZII_PARTICLES)
    rng = np.random.default_rng(0)
    for _ in range(300):
        draw = sampler.sample(rng)
        start, end = np.array(draw.start), np.array(draw.start) + PATCH
        assert np.all(start >= 0) and np.all(end <= SHAPES[draw.run])
        inside = np.all((centers[draw.run] >= start - 0.5) & (centers[draw.run] < end - 0.5), axis=1)
        assert np.any(inside & (channels[draw.run] == draw.channel))


def test_class_frequencies_follow_weights() -> None:
    centers, channels = _picks(1)
    weights = {p.name: float(i + 1) for i, p in enumerate(PARTICLES)}  # 1..6
    sampler = PatchSampler(SHAPES, channels, centers, PATCH, 1.0, weights, particles=CZII_PARTICLES)
    rng = np.random.default_rng(123)
    n = 6000
    counts = np.bincount([sampler.sample(rng).channel for _ in range(n)], minlength=NUM_CLASSES)
    expected = np.arange(1, 7) / 21.0
    sd = np.sqrt(n * expected * (1 - expected))
    assert np.all(np.abs(counts - n * expected) < 4 * sd), counts


def test_negative_share_and_absent_classes() -> None:
    centers, channels = _picks(2)
    channels = [np.where(c == 5, 0, c) for c in channels]  # class 5 absent: never drawn
    sampler = PatchSampler(SHAPES, channels, centers, PATCH, 0.7, default_class_weights(), particles=CZII_PARTICLES)
    assert sampler.class_probabilities[5] == 0.0
    rng = np.random.default_rng(7)
    draws = [sampler.sample(rng).channel for _ in range(2000)]
    negatives = np.mean(np.array(draws) == -1)
    assert abs(negatives - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 2000)
    assert 5 not in draws


def test_default_weights_favour_hard_classes() -> None:
    weights = default_class_weights()
    assert weights["beta-galactosidase"] == 2 * weights["ribosome"]
    assert weights["thyroglobulin"] == 2 * weights["apo-ferritin"]
    assert weights["beta-amylase"] > 0


def test_patch_larger_than_tomogram_is_error() -> None:
    centers, channels = _picks()
    with pytest.raises(ValueError, match=r"TS_x.*\(40, 80, 80\)"):
        PatchSampler(SHAPES, channels, centers, (48, 32, 32), 0.5, default_class_weights(), ["TS_x", "TS_y"],
                     particles=CZII_PARTICLES)
