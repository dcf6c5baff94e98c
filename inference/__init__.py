"""Prediction with plain torch (never Lightning): run folders, checkpoints, the sliding window, the fold ensemble
and its out-of-fold thresholds. ``from inference import EnsemblePredictor`` is the Python API."""
from __future__ import annotations


def __getattr__(name: str) -> object:
    """``inference.EnsemblePredictor``, imported on first use (the package's modules stay cheap to import)."""
    if name == "EnsemblePredictor":
        from inference.predictor import EnsemblePredictor

        return EnsemblePredictor
    raise AttributeError(f"module 'inference' has no attribute {name!r}")
