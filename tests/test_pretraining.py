"""`make pretrain` end to end at tiny sizes: a simulated pre-training set of every difficulty, one pre-trained
model, a pair model fine-tuned from it on another dataset, and the ensemble of that dataset's test runs."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from config.yaml_cli import load_yaml
from dataio.layout import tomogram_path

REPO = Path(__file__).resolve().parents[1]
TINY_TRAIN = ("--model.widths 8 16 32 --data.patch_size 32 32 32 --data.batch_size 1 --data.num_workers 0 "
              "--data.patches_per_epoch 2 --inference.window 32 64 64 --trainer.max_epochs 1 "
              "--trainer.check_val_every_n_epoch 1 --logging.wandb false --validation.picture false")

pytestmark = pytest.mark.slow


def _weights(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("model.")}


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_pretrain_pretrains_fine_tunes_and_ensembles(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "pretrain"
    cmd = ["make", "-o", ".venv/.installed", "pretrain", f"PY={sys.executable}", f"PRETRAIN={out}",
           "PRETRAIN_RUNS=3", "PRETRAIN_SNR=1:8", "PRETRAIN_SIZE=32,64,64", "PRETRAIN_EPOCHS=1",
           f"DATA={tiny_dataset}", "FINETUNE_FOLDS=0+1", f"TRAIN_ARGS={TINY_TRAIN}"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "WANDB_MODE": "disabled"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert all(tomogram_path(out / "data", "train", f"TS_sim_train_{i}").is_dir() for i in range(3))
    pretrained = out / "runs" / "pretrained_fold0"
    split = load_yaml(pretrained / "split.yaml")
    assert split["val_runs"] == ["TS_sim_train_0"] and len(split["train_runs"]) == 2
    (tuned,) = (out / "finetuned").glob("*_fold0+1")
    config = load_yaml(tuned / "config.yaml")
    assert config["init_from"] == str((pretrained).absolute()) and config["data"]["data_root"] == str(tiny_dataset)
    assert _weights(tuned / "checkpoints" / "weights.ckpt").keys() == _weights(pretrained / "checkpoints" /
                                                                                 "weights.ckpt").keys()
    picks = pd.read_csv(out / "submission.csv")
    assert set(picks["experiment"]) <= {"TS_sim_test_0", "TS_sim_test_1"}
    assert list(picks.columns[:2]) == ["id", "experiment"]
