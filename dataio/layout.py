"""Where files live in the copick / Kaggle CZII layout; every reader and writer asks here."""
from __future__ import annotations

from pathlib import Path

VOXEL_SPACING_DIR = "VoxelSpacing10.000"
TRAIN_RUNS: tuple[str, ...] = ("TS_5_4", "TS_6_4", "TS_6_6", "TS_69_2", "TS_73_6", "TS_86_3", "TS_99_9")
SPLITS: tuple[str, ...] = ("train", "test")
TEST_TRUTH_DIR = "test_truth"
"""Simulated datasets keep the true test picks apart, under ``<root>/test_truth/overlay``."""
COPICK_CONFIG_NAME = "copick_config.json"
TEST_COPICK_CONFIG_NAME = "copick_config_test.json"
"""A second copick config for the test split (one config holds one static and one overlay root)."""
TRUTH_USER = "curation"
"""copick's user id of curated picks: the default truth, and the only user a simulated dataset writes."""
TRUTH_SESSION = "0"


def static_runs_dir(root: Path, split: str) -> Path:
    """``<root>/<split>/static/ExperimentRuns``: one folder per run holding its tomograms."""
    return Path(root) / split / "static" / "ExperimentRuns"


def overlay_runs_dir(overlay_root: Path) -> Path:
    """``<overlay_root>/ExperimentRuns`` where ``overlay_root`` is e.g. ``<root>/train/overlay``."""
    return Path(overlay_root) / "ExperimentRuns"


def train_overlay_root(root: Path) -> Path:
    return Path(root) / "train" / "overlay"


def truth_overlay_root(root: Path) -> Path:
    return Path(root) / TEST_TRUTH_DIR / "overlay"


def tomogram_path(root: Path, split: str, run: str, tomo_type: str = "denoised") -> Path:
    """``<root>/<split>/static/ExperimentRuns/<run>/VoxelSpacing10.000/<type>.zarr``."""
    return static_runs_dir(root, split) / run / VOXEL_SPACING_DIR / f"{tomo_type}.zarr"


def picks_dir(overlay_root: Path, run: str) -> Path:
    """``<overlay_root>/ExperimentRuns/<run>/Picks``: one ``<particle>.json`` per class."""
    return overlay_runs_dir(overlay_root) / run / "Picks"


def check_path_name(name: object, what: str) -> str:
    """A name that becomes one component of a path (experiment, run, user, session, object): non-empty, no
    path separator, not ``.`` / ``..`` nor hidden, so it can never point outside the folder it is joined to."""
    text = str(name)
    if (not text or text != text.strip() or "/" in text or "\\" in text or "\0" in text or text.startswith(".")
            or len(text) > 200):
        raise ValueError(f"{what} {text!r} cannot name a file or folder: it must be non-empty, at most 200 "
                         "characters, without '/', '\\' or surrounding spaces, and not start with '.'")
    return text


def check_pick_owner(user_id: str, session_id: str) -> None:
    """copick splits a pick file name on ``_`` into user, session and object: neither may contain one."""
    for what, value in (("user_id", user_id), ("session_id", session_id)):
        check_path_name(value, f"copick {what}")
        if "_" in value:
            raise ValueError(f"copick {what} {value!r} must not contain '_' (copick names pick files "
                             f"<user>_<session>_<object>.json and splits the name on '_')")


def pick_file(overlay_root: Path, run: str, particle_name: str, user_id: str = TRUTH_USER,
              session_id: str = TRUTH_SESSION) -> Path:
    """``<overlay_root>/ExperimentRuns/<run>/Picks/<user>_<session>_<particle>.json``, copick's name."""
    check_pick_owner(user_id, session_id)
    check_path_name(run, "run name")
    check_path_name(particle_name, "object name")
    return picks_dir(overlay_root, run) / f"{user_id}_{session_id}_{particle_name}.json"


def parse_pick_file_name(stem: str) -> tuple[str | None, str | None, str]:
    """A pick file's stem -> (user, session, object) as copick reads it; a Kaggle-flattened ``<object>``
    stem (no ``_``) gives (None, None, object): its owner is only in the file's JSON."""
    parts = stem.split("_")
    if len(parts) == 1:
        return None, None, stem
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"pick file name {stem!r}.json is neither <object>.json nor copick's "
                         f"<user>_<session>_<object>.json")
    return parts[0], parts[1], parts[2]
