"""The ensemble's picks on a fixed model and dataset, against a reference recorded before the code was
reorganised (tests/data/golden_*): a refactor must not change what the tool predicts.

The model is a seeded random ``unet-tiny`` (its head scaled up so peaks stand apart), the data the tiny simulated
dataset, and each class's threshold sits in the middle of a wide gap between candidate scores, so that the
floating-point noise of another CPU cannot move a candidate across it; coordinates may differ by that noise
(a tolerance of 0.5 Å, a twentieth of a voxel), the picks themselves may not.
``python -m tests.test_golden_ensemble`` records the reference again (only for an intended change of output).
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import ensemble
from config.yaml_cli import to_dict
from config.resolve import resolve_config
from models.registry import build_model
from particles import CZII_PARTICLES, PARTICLE_NAMES
from tests.training_fixtures import tiny_overrides

GOLDEN = Path(__file__).parent / "data" / "golden_submission.csv"
GOLDEN_THRESHOLDS = Path(__file__).parent / "data" / "golden_thresholds.json"
OPTIONS = ["--split", "test", "--tta", "identity", "flip_z", "--window", "48", "96", "96", "--precision", "fp32"]


def seeded_checkpoint(path: Path, data: Path) -> Path:
    """A checkpoint as train.py writes it, of a seeded random unet-tiny with a scaled-up head."""
    cfg = resolve_config(None, None, tiny_overrides(data))
    torch.manual_seed(1234)
    model = build_model(cfg.model)
    head = [p for n, p in model.named_parameters() if n.endswith("weight")][-1]
    with torch.no_grad():
        head.mul_(6.0)
    state = {"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
             "hyper_parameters": {"config": to_dict(cfg)}, "epoch": 0, "global_step": 1}
    torch.save(state, path)
    return path


def predict(data: Path, work: Path, thresholds: dict[str, float]) -> pd.DataFrame:
    path = work / "thresholds.json"
    path.write_text(json.dumps(thresholds))
    out = work / "sub.csv"
    code = ensemble.main(["--checkpoints", str(seeded_checkpoint(work / "seeded.ckpt", data)), "--data", str(data),
                          "--out", str(out), "--thresholds", str(path), *OPTIONS])
    assert code == 0
    return pd.read_csv(out)


def test_the_ensemble_predicts_what_it_predicted_before_the_refactor(tiny_dataset, tmp_path) -> None:
    now = predict(tiny_dataset, tmp_path, json.loads(GOLDEN_THRESHOLDS.read_text()))
    before = pd.read_csv(GOLDEN)
    assert len(before) > 20
    keys = ["experiment", "particle_type"]
    assert now[keys].value_counts().to_dict() == before[keys].value_counts().to_dict()
    for (run, name), rows in before.groupby(keys):
        mine = now[(now["experiment"] == run) & (now["particle_type"] == name)]
        a, b = rows[["x", "y", "z"]].to_numpy(), mine[["x", "y", "z"]].to_numpy()
        nearest = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min(axis=1)  # [N] Å
        assert nearest.max() <= 0.5, (run, name, nearest.max())


def test_the_python_api_gives_exactly_the_tools_picks(tiny_dataset, tmp_path) -> None:
    """``EnsemblePredictor.from_checkpoints(...).predict(volume, spacing)`` is what ensemble.py writes."""
    from dataio.sources import open_source
    from inference.predictor import EnsemblePredictor

    thresholds = json.loads(GOLDEN_THRESHOLDS.read_text())
    tool = predict(tiny_dataset, tmp_path, thresholds)
    predictor = EnsemblePredictor.from_checkpoints([tmp_path / "seeded.ckpt"], thresholds_file=tmp_path /
                                                   "thresholds.json", user_thresholds=True, tta=["identity", "flip_z"],
                                                   window=[48, 96, 96], precision="fp32", device="cpu")
    source = open_source(tiny_dataset, "test", particles=CZII_PARTICLES)
    for run in source.run_names():
        picks = predictor.predict(source.load_tomogram(run), source.voxel_spacing, run)
        mine = tool[tool["experiment"] == run].sort_values(["particle_type", "z", "y", "x"]).reset_index(drop=True)
        api = picks.sort_values(["particle_type", "z", "y", "x"]).reset_index(drop=True)
        assert len(api) == len(mine) > 0
        assert list(api["particle_type"]) == list(mine["particle_type"])
        np.testing.assert_allclose(api[["x", "y", "z"]].to_numpy(), mine[["x", "y", "z"]].to_numpy(), atol=1e-3)


def gap_thresholds(scores: pd.DataFrame, ranks: tuple[int, int] = (5, 40)) -> dict[str, float]:
    """Per class, the middle of the widest gap between consecutive candidate scores among ranks 5..40."""
    out = {}
    for name, rows in scores.groupby("particle_type"):
        ordered = np.sort(rows["score"].to_numpy())[::-1][ranks[0]:ranks[1]]
        i = int(np.argmax(ordered[:-1] - ordered[1:]))
        out[str(name)] = float((ordered[i] + ordered[i + 1]) / 2)
    return out


def record(work: Path) -> None:
    """Simulate the tiny dataset, score every candidate, choose gap thresholds, write the reference."""
    from simulation import simulate_dataset
    from tests.conftest import TINY_SHAPE

    data = simulate_dataset(work / "data", size=TINY_SHAPE, seed=0, n_test=2)
    thresholds = gap_thresholds(candidate_scores(data, seeded_checkpoint(work / "seeded.ckpt", data)))
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN_THRESHOLDS.write_text(json.dumps(thresholds, indent=2) + "\n")
    predict(data, work, thresholds).to_csv(GOLDEN, index=False)


def candidate_scores(data: Path, checkpoint: Path) -> pd.DataFrame:
    """Every candidate with its score, predicted with the settings OPTIONS gives ensemble.py."""
    from dataio.sources import open_source
    from inference.fold_runs import ensemble_settings, fold_run_from_checkpoint, load_model
    from inference.predict import predict_run

    run = fold_run_from_checkpoint(checkpoint)
    settings = ensemble_settings(run.config, window=(48, 96, 96), tta=("identity", "flip_z"))
    source, model = open_source(data, "test", particles=CZII_PARTICLES), load_model(run)
    floor = {name: 0.0 for name in PARTICLE_NAMES}
    return pd.concat([predict_run([model], source.load_tomogram(r), r, settings, floor, torch.device("cpu"),
                                  source.voxel_spacing)
                      for r in source.run_names()], ignore_index=True)


if __name__ == "__main__":
    record(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
