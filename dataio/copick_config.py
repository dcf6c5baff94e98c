"""The copick config documents of a dataset root in the Kaggle / copick layout, so the copick library (and every
tool built on it: napari-copick, ChimeraX-copick, the CZII tools) opens the project as written.

One copick config holds one static and one overlay root, so a root gets two: ``copick_config.json`` (train
tomograms and their curated picks) and ``copick_config_test.json`` (test tomograms and, for a simulated dataset,
their true picks). Paths are absolute ``local://`` URLs (copick resolves relative ones against the working
directory); after moving a dataset run ``python -m dataio.copick_config ROOT`` to write them again.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from runtime.atomic import write_text_atomic
from runtime.cli_errors import run_tool
from dataio.particle_sets import SCORING_METADATA, read_particles_file
from dataio.layout import (COPICK_CONFIG_NAME, TEST_COPICK_CONFIG_NAME, static_runs_dir, train_overlay_root,
                           truth_overlay_root)
from particles import CZII_PARTICLES, ParticleSet


def copick_config(root: Path, split: str = "train", name: str = "czii-picker dataset",
                  *, particles: ParticleSet) -> dict:
    """The copick config document for one split of ``root`` (pickable objects from ``particles``)."""
    root = Path(root).resolve()
    objects = [{"name": p.name, "is_particle": True, "pdb_id": p.pdb_id or None, "label": p.label,
                "radius": p.radius, "metadata": {SCORING_METADATA: {"weight": p.weight, "difficulty": p.difficulty}}}
               for p in particles.particles]
    overlay = train_overlay_root(root) if split == "train" else truth_overlay_root(root)
    return {"name": name, "description": f"The {split} split of {root} (Kaggle CZII / copick layout).",
            "version": "1.0.0", "config_type": "filesystem", "pickable_objects": objects,
            "overlay_root": f"local://{overlay}", "overlay_fs_args": {"auto_mkdir": True},
            "static_root": f"local://{static_runs_dir(root, split).parent}", "static_fs_args": {}}


def write_copick_configs(root: Path, name: str = "czii-picker dataset",
                         *, particles: ParticleSet) -> list[Path]:
    """Write both configs of ``root`` atomically; returns their paths."""
    root = Path(root)
    return [write_text_atomic(root / file, json.dumps(copick_config(root, split, name, particles=particles),
                                                      indent=2) + "\n")
            for split, file in (("train", COPICK_CONFIG_NAME), ("test", TEST_COPICK_CONFIG_NAME))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the copick configs of a dataset root (after moving it).")
    parser.add_argument("root", help="dataset root (has train/static/ExperimentRuns)")
    args = parser.parse_args(argv)
    return run_tool("dataio.copick_config", lambda: rewrite_configs(Path(args.root)))


def rewrite_configs(root: Path) -> int:
    if not static_runs_dir(root, "train").is_dir():
        raise FileNotFoundError(f"{root}: no {static_runs_dir(root, 'train')}: not a dataset root")
    existing = root / COPICK_CONFIG_NAME  # keep the dataset's own classes
    particles = (read_particles_file(existing) if existing.is_file() else CZII_PARTICLES)
    for path in write_copick_configs(root, particles=particles):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
