"""folds.yaml (fold -> validation runs), the only split definition: read (refusing inconsistent ones) and
written (beside a simulated dataset whose runs are not the CZII seven)."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from runtime.bounded_reads import read_yaml

REPO_ROOT = Path(__file__).resolve().parents[1]

ALL_FOLDS: tuple[str, ...] = ("-1", "all")
"""Fold values meaning: train on every run, validate on none."""


def _fold_key(key: object, path: Path) -> int:
    if isinstance(key, bool):
        raise ValueError(f"{path}: fold key {key!r} is not an integer")
    try:
        return int(str(key))
    except ValueError:
        raise ValueError(f"{path}: fold key {key!r} is not an integer") from None


def load_folds(path: str | Path, available_runs: Iterable[str]) -> dict[int, list[str]]:
    """Fold number -> its validation runs; every available run in exactly one fold, none unknown."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"folds file not found: {path}")
    doc = read_yaml(path, "folds file")
    if not isinstance(doc, dict) or "folds" not in doc:
        raise ValueError(f"{path}: expected a mapping with a 'folds' key")
    raw = doc["folds"]
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{path}: 'folds' must be a non-empty mapping fold -> list of runs")
    folds: dict[int, list[str]] = {}
    seen: dict[str, int] = {}
    for key, runs in raw.items():
        fold = _fold_key(key, path)
        if fold < 0:
            raise ValueError(f"{path}: fold {fold} is negative (-1 is reserved for 'train on all runs')")
        if fold in folds:
            raise ValueError(f"{path}: fold {fold} is listed twice")
        if not isinstance(runs, list):
            raise ValueError(f"{path}: fold {fold} must be a list of runs, got {runs!r}")
        if not runs:
            raise ValueError(f"{path}: fold {fold} is empty")
        for run in map(str, runs):
            if run in seen:
                raise ValueError(f"{path}: run {run!r} is in two folds ({seen[run]} and {fold})")
            seen[run] = fold
        folds[fold] = [str(r) for r in runs]
    available = set(map(str, available_runs))
    unknown = sorted(set(seen) - available)
    if unknown:
        raise ValueError(f"{path}: unknown runs {unknown} (not in the dataset; it has {sorted(available)})")
    unassigned = sorted(available - set(seen))
    if unassigned:
        raise ValueError(f"{path}: runs in no fold: {unassigned}")
    return dict(sorted(folds.items()))


def held_out_folds(folds: dict[int, list[str]], fold: int | str) -> list[int]:
    """The fold numbers ``fold`` holds out: one (``3``) or several joined by '+' (``2+5``: a nested-CV model
    that leaves two folds out); [] for -1 / "all"."""
    text = str(fold).strip().lower()
    if text in ALL_FOLDS:
        return []
    valid = ", ".join([str(k) for k in sorted(folds)] + list(ALL_FOLDS))
    keys: list[int] = []
    for part in text.split("+"):
        try:
            k = int(part.strip())
        except ValueError:
            raise ValueError(f"unknown fold {fold!r}; valid folds: {valid} (or several joined by '+')") from None
        if isinstance(fold, bool) or k not in folds:
            raise ValueError(f"unknown fold {fold!r}; valid folds: {valid} (or several joined by '+')")
        if k in keys:
            raise ValueError(f"fold {fold!r} lists fold {k} twice")
        keys.append(k)
    if len(keys) == len(folds):
        raise ValueError(f"fold {fold!r} holds out every fold: nothing left to train on")
    return sorted(keys)


def split_runs(folds: dict[int, list[str]], fold: int | str) -> tuple[list[str], list[str]]:
    """(train runs, validation runs) for ``fold``; -1 / "-1" / "all" trains on every run, validates on none;
    "2+5" validates on the runs of folds 2 and 5."""
    all_runs = [run for k in sorted(folds) for run in folds[k]]
    val = [run for k in held_out_folds(folds, fold) for run in folds[k]]
    return [run for run in all_runs if run not in set(val)], val


def resolve_folds_file(folds_file: str | Path) -> Path:
    """The folds file as given, else relative to the repository root."""
    path = Path(folds_file)
    for candidate in (path, REPO_ROOT / path):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"folds file {folds_file} not found (looked in the working directory and {REPO_ROOT})")


def one_run_per_fold(runs: Iterable[str]) -> dict[int, list[str]]:
    """Fold k holds out the k-th run, as the repository's folds.yaml does for the seven CZII runs."""
    return {k: [str(run)] for k, run in enumerate(runs)}


def folds_text(folds: dict[int, list[str]]) -> str:
    """A folds file that ``load_folds`` reads back to ``folds``."""
    header = ("# fold -> validation runs; train on every other run (`--fold -1` or `all`: every run, no "
              "validation)\n")
    return header + yaml.safe_dump({"folds": {int(k): list(map(str, v)) for k, v in folds.items()}},
                                   sort_keys=False, default_flow_style=None)
