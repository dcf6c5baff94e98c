"""Where training patches come from: class-balanced positive patches near picks, and random patches."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from particles import ParticleSet

@dataclass(frozen=True)
class PatchDraw:
    """A sampled patch: run index, window start (z, y, x), and the class it was centred on (-1: random)."""

    run: int
    start: tuple[int, int, int]
    channel: int


class PatchSampler:
    """Draw patch windows: with ``positive_fraction`` near a pick of a weighted class, else uniformly."""

    def __init__(self, shapes: list[tuple[int, int, int]], channels: list[np.ndarray],
                 centers_zyx: list[np.ndarray], patch_size: tuple[int, int, int], positive_fraction: float,
                 class_weights: dict[str, float], run_names: list[str] | None = None,
                 *, particles: ParticleSet) -> None:
        names = run_names or [f"run {i}" for i in range(len(shapes))]
        if not shapes:
            raise ValueError("no training volumes to sample patches from")
        for name, shape in zip(names, shapes):
            if any(p > s for p, s in zip(patch_size, shape)):
                raise ValueError(f"patch size {tuple(patch_size)} is larger than tomogram {name} "
                                 f"of shape {tuple(shape)}")
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must lie in [0, 1], got {positive_fraction}")
        unknown = sorted(set(class_weights) - set(particles.names))
        if unknown or any(w < 0 for w in class_weights.values()):
            raise ValueError(f"class_sampling_weights: unknown names {unknown} or negative weights in "
                             f"{class_weights}")
        self.shapes = [np.asarray(s, dtype=np.int64) for s in shapes]
        self.patch = np.asarray(patch_size, dtype=np.int64)
        self.positive_fraction = positive_fraction
        # all picks of all runs as one table: run index, centre, channel
        self._run = np.concatenate([np.full(len(c), i) for i, c in enumerate(channels)]).astype(np.int64)
        self._centers = np.concatenate([np.asarray(c, dtype=np.float64).reshape(-1, 3) for c in centers_zyx])
        self._channel = np.concatenate([np.asarray(c, dtype=np.int64) for c in channels])
        n = particles.num_classes
        weights = np.array([class_weights.get(p.name, 0.0) for p in particles.particles])
        present = np.bincount(self._channel, minlength=n)[:n] > 0
        weights = np.where(present, weights, 0.0)
        self.class_probabilities = weights / weights.sum() if weights.sum() > 0 else weights  # [classes]
        self._by_class = [np.flatnonzero(self._channel == c) for c in range(n)]

    def _clamp(self, run: int, start: np.ndarray) -> tuple[int, int, int]:
        high = self.shapes[run] - self.patch
        return tuple(int(v) for v in np.clip(start, 0, high))  # type: ignore[return-value]

    def sample(self, rng: np.random.Generator) -> PatchDraw:
        """One window; a positive one holds its pick at least a quarter patch inside every face."""
        positive = self.class_probabilities.sum() > 0 and rng.random() < self.positive_fraction
        if positive:
            channel = int(rng.choice(len(self.class_probabilities), p=self.class_probabilities))
            pick = int(rng.choice(self._by_class[channel]))
            run = int(self._run[pick])
            jitter = rng.uniform(-0.25, 0.25, size=3) * self.patch
            start = np.rint(self._centers[pick] - (self.patch - 1) / 2 + jitter).astype(np.int64)
            return PatchDraw(run, self._clamp(run, start), channel)
        run = int(rng.integers(len(self.shapes)))
        start = rng.integers(0, self.shapes[run] - self.patch + 1)
        return PatchDraw(run, self._clamp(run, start), -1)
