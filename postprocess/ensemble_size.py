"""A score carried from the ensemble sizes out-of-fold runs are predicted with to the size of the ensemble that
predicts new tomograms.

Pair models (``--fold K+L``) leave each training run to the two models that never saw it, while every test
tomogram is predicted by all seven: the OOF CV describes an ensemble of two. Averaging members shrinks the part
of the error that differs between them as ``1 / m``; ``S(m) = a - b / m`` through the OOF scores of single
members and of the OOF ensembles is read at the test ensemble's size (BENCHMARKS.md, "The OOF CV").
"""
from __future__ import annotations


def carried_score(single: float, ensemble: float, members: int, size: int) -> float:
    """``a - b / m`` through ``(1, single)`` and ``(members, ensemble)``, read at ``m = size``."""
    if members < 2 or size < 1:
        raise ValueError(f"a score is carried from ensembles of 2+ members to 1+; got {members} and {size}")
    b = (ensemble - single) / (1.0 - 1.0 / members)
    return single + b - b / size
