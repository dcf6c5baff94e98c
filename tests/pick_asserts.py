"""Comparing pick tables that should agree up to float rounding."""
from __future__ import annotations

import pandas as pd
import pytest


def assert_same_picks(got: pd.DataFrame, expected: pd.DataFrame, tolerance: float = 0.5) -> None:
    """The same picks up to float rounding (a mean of per-model means against one sum moves the last bits, and
    so a component's weighted centre by a fraction of an Å): per class, as many picks, each within
    ``tolerance`` Å of one of the other table's, with nearly the same score."""
    from scipy.spatial import cKDTree

    assert len(expected) > 0
    assert got["particle_type"].value_counts().to_dict() == expected["particle_type"].value_counts().to_dict()
    for name, want in expected.groupby("particle_type"):
        have = got[got["particle_type"] == name]
        distance, index = cKDTree(have[["x", "y", "z"]].to_numpy()).query(want[["x", "y", "z"]].to_numpy())
        assert distance.max() < tolerance, name
        assert sorted(index) == list(range(len(have))), name  # one to one
        assert have["score"].to_numpy()[index] == pytest.approx(want["score"].to_numpy(), abs=1e-4), name


def assert_same_picks_per(got: pd.DataFrame, expected: pd.DataFrame, columns: list[str]) -> None:
    """``assert_same_picks`` within each group of ``columns`` (those both tables have), the same groups in both."""
    keys = [c for c in columns if c in expected.columns]
    groups = expected.groupby(keys).groups
    assert sorted(got.groupby(keys).groups) == sorted(groups)
    for key in groups:
        values = key if isinstance(key, tuple) else (key,)
        assert_same_picks(got[(got[keys] == pd.Series(dict(zip(keys, values)))).all(axis=1)], expected.loc[groups[key]])
