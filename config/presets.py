"""Named recipes: each a small, visible diff over the ``ExperimentConfig`` defaults."""
from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # The full recipe for a GPU node on full-size data (184x630x630): resnet34 U-Net, 96^3 patches, bf16.
    # The ensemble averages the same 4 test-time views as the CPU recipe (its measured gain: single models'
    # OOF CV +0.04-0.05 at every level, the ensemble +0.11 at `hard`); estimated from counted FLOPs, 7 models
    # x 4 views cost about 1.2 PFLOP per full-size tomogram (BENCHMARKS.md, "Speed and memory").
    "gpu": {
        "model": {"name": "unet-resnet34", "output_stride": 1},
        "data": {"patch_size": [96, 96, 96], "batch_size": 8, "num_workers": 8,
                 "patches_per_epoch": 4000, "positive_fraction": 0.7},
        "optim": {"lr": 1e-3},
        "mixup": {"prob": 0.5},
        "ema": {"decay": 0.999, "start_step": 200},
        "inference": {"window": [96, 192, 192], "batch_size": 4,
                      "tta": ["identity", "flip_z", "flip_y", "rot90_1"]},
        "trainer": {"precision": "bf16-mixed", "max_epochs": 40},
    },
    # The CPU recipe (2 cores, no GPU): chosen by measured comparisons on realistic simulated data at the
    # same budget (BENCHMARKS_HISTORY.md, "The CPU recipe"). A strided stem puts every convolution at 20 Å; the width
    # goes to the deeper levels, where it costs little; a high learning rate and 36 short epochs; the
    # ensemble uses the final EMA weights and averages 4 test-time transforms (hard level: +0.11 on 20 runs).
    # The Dice loss on the Gaussian heatmaps and connected-component picking with each class's level fitted
    # out of fold beat weighted BCE and NMS at 12 epochs (realistic and hard) and at 36 epochs on 20 realistic
    # test runs (BENCHMARKS_HISTORY.md, "Recipe options"). About 5 min per fold on a 92x315x315 run.
    "cpu": {
        "model": {"name": "unet-tiny", "output_stride": 2, "widths": [16, 48, 96, 192]},
        "data": {"patch_size": [64, 64, 64], "batch_size": 4, "num_workers": 1,
                 "patches_per_epoch": 96, "positive_fraction": 0.8},
        "loss": {"kind": "dice"},
        "optim": {"lr": 4e-3, "warmup_fraction": 0.05},
        "mixup": {"prob": 0.25},
        "ema": {"decay": 0.98, "start_step": 20},
        # the window is cut to the tomogram: a full-size 184x630x630 one in a single window costs a third of
        # 96x320x320 windows at overlap 0.25 (no compute on overlaps; BENCHMARKS.md "Speed and memory")
        # classes decided jointly: each candidate weighed against its strongest rival of another class on the
        # same spot, fitted out of fold; it won in all four family x level cells on 20 test runs (+0.004 to
        # +0.032, no weight-2 class lower, false picks on other classes' particles -46 to -57 %; BENCHMARKS.md)
        "inference": {"window": [192, 640, 640], "batch_size": 1, "tta": ["identity", "flip_z", "flip_y", "rot90_1"],
                      "picker": "cc3d", "class_decision": "competing"},
        "validation": {"checkpoint": "last"},
        "trainer": {"accelerator": "cpu", "precision": "32", "max_epochs": 36, "check_val_every_n_epoch": 6},
    },
}


def preset_overrides(name: str) -> dict[str, Any]:
    """The nested overrides of preset ``name``; unknown names are an error listing the presets."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
