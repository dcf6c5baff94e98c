"""The typed config: strict round trips, overrides, presets, clear errors."""
from __future__ import annotations

import pytest
import yaml

from config.experiment import ExperimentConfig
from config.yaml_cli import dotted_to_nested, from_dict, load_yaml, parse_cli_value, to_dict
from config.presets import PRESETS
from config.resolve import experiment_name, resolve_config


def test_round_trip_through_yaml(tmp_path) -> None:
    cfg = resolve_config("cpu", None, {"optim": {"lr": 0.0005}})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg)))
    again = from_dict(ExperimentConfig, load_yaml(path))
    assert again == cfg
    assert again.optim.lr == 0.0005


def test_precedence_defaults_preset_file_flags(tmp_path) -> None:
    file = tmp_path / "exp.yaml"
    file.write_text("optim:\n  lr: 0.002\n  weight_decay: 0.05\n")
    cfg = resolve_config("cpu", str(file), dotted_to_nested({"optim.lr": parse_cli_value("1e-4")}))
    assert cfg.optim.lr == pytest.approx(1e-4)  # flag beats file
    assert cfg.optim.weight_decay == 0.05  # file beats default
    assert cfg.model.name == PRESETS["cpu"]["model"]["name"]  # preset beats default


def test_ce_loss_gets_a_background_channel() -> None:
    assert resolve_config("cpu", None, {"loss": {"kind": "ce"}}).model.out_channels == 7
    assert resolve_config("cpu", None, {"loss": {"kind": "bce"}}).model.out_channels == 6
    assert resolve_config("cpu", None, {"loss": {"kind": "tversky_ce"}}).model.out_channels == 7
    assert resolve_config("cpu", None, {"loss": {"kind": "dice"}}).model.out_channels == 6


@pytest.mark.parametrize("bad, message", [
    ({"optim": {"lrr": 1.0}}, "unknown config key"),
    ({"optim": {"lr": "fast"}}, "optim.lr"),
    ({"loss": {"kind": "dicey"}}, "must be one of"),
    ({"data": {"patch_size": [64, 64]}}, "data.patch_size"),
    ({"model": {"output_stride": 2}, "data": {"target_stride": 1}}, "target_stride"),
    ({"data": {"level": 1}}, "unknown config key.*data.level"),
])
def test_bad_config_is_a_clear_error(bad, message) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_config("cpu", None, bad)


def test_unknown_preset_and_malformed_file(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_config("tpu", None, {})
    broken = tmp_path / "broken.yaml"
    broken.write_text("optim: [unclosed\n")
    with pytest.raises(ValueError, match="broken.yaml"):
        resolve_config(None, str(broken), {})


def test_experiment_name_is_deterministic_and_carries_key_flags() -> None:
    cfg = resolve_config("cpu", None, {"seed": 7, "model": {"output_stride": 2}})
    assert experiment_name(cfg) == experiment_name(resolve_config("cpu", None, {"seed": 7,
                                                                                "model": {"output_stride": 2}}))
    name = experiment_name(cfg)
    assert "s7" in name and "os2" in name and "x".join(map(str, cfg.data.patch_size)) in name


def test_recipes_differing_in_any_field_get_different_names_folds_the_same() -> None:
    base = resolve_config("cpu", None, {})
    assert resolve_config("cpu", None, {"data": {"fold": 3, "num_workers": 0}}).experiment == base.experiment
    for other in ({"optim": {"lr": 1e-3}}, {"model": {"widths": [8, 16, 32, 64]}}, {"data": {"data_root": "x"}}):
        assert resolve_config("cpu", None, other).experiment != base.experiment, other


def test_fold_is_required_and_seed_drives_the_patch_sampler(tmp_path) -> None:
    import train

    assert train.main(["--data", str(tmp_path)]) == 2  # no --fold: refused before anything is read
    args = train.build_parser().parse_args(["--fold", "0", "--seed", "7"])
    assert train.overrides_from(args)["data"]["seed"] == 7
    args = train.build_parser().parse_args(["--fold", "0", "--seed", "7", "--data.seed", "3"])
    assert train.overrides_from(args)["data"]["seed"] == 3
    config = tmp_path / "exp.yaml"
    config.write_text("data:\n  fold: 2\n")
    assert train.fold_is_given(train.build_parser().parse_args(["--config", str(config)]))


def test_recipe_tta_is_checked_and_reaches_the_ensemble_settings() -> None:
    from inference.fold_runs import ensemble_settings

    cfg = resolve_config(None, None, {"inference": {"tta": ["identity", "flip_z"]}})
    assert ensemble_settings(cfg).inference.tta == ("identity", "flip_z")
    assert ensemble_settings(cfg, tta=("identity",)).inference.tta == ("identity",)  # --tta overrides the recipe
    with pytest.raises(ValueError, match="inference.tta' must be one of"):
        resolve_config(None, None, {"inference": {"tta": ["flip_w"]}})


def test_one_word_for_a_list_flag_is_a_list_of_one() -> None:
    import ensemble

    args = ensemble.build_parser().parse_args(["--out", "x.csv", "--tta", "identity"])
    from config.experiment import InferenceSettings
    from config.flags import given_config_values

    assert given_config_values(args, InferenceSettings)["tta"] == ["identity"]


def test_recipe_names_stay_what_earlier_versions_named_them() -> None:
    """Names hash the version-1 layout (config/migrations.py): a recipe's name changes with the recipe, never with
    the config's layout, so a run folder named before the config was versioned is still found by --resume.
    The cpu preset's names changed on 2026-12-06 with its class decision (competing; BENCHMARKS.md)."""
    from config.resolve import resolve_config

    fixed = {"data": {"data_root": "/data/czii", "fold": "0+1"}}
    assert resolve_config("cpu", None, fixed).experiment == "unet-tiny_64x64x64_dice_os2_s42_47b748"
    assert resolve_config("gpu", None, fixed).experiment == "unet-resnet34_96x96x96_bce_s42_4d7b87"
    options = {"data": {"data_root": "/data/czii", "fold": 0}, "loss": {"kind": "tversky", "tversky_alpha": 0.4},
               "inference": {"picker": "nms"}}
    assert resolve_config("cpu", None, options).experiment == "unet-tiny_64x64x64_tversky_os2_s42_4fc921"


def test_a_version_1_config_is_migrated_and_a_future_one_refused() -> None:
    from config.migrations import CONFIG_VERSION, upgrade
    from config.resolve import experiment_config

    today = to_dict(resolve_config("cpu", None, {"data": {"data_root": "/data/czii", "fold": 0}}))
    assert today["version"] == CONFIG_VERSION == 2
    old = {k: v for k, v in today.items() if k not in ("version", "inference")}
    old["validation"] = {**today["validation"], "window": [32, 64, 64], "tta": ["identity"]}
    old["data"] = {**today["data"], "level": 0}
    migrated = experiment_config(old)
    assert tuple(migrated.inference.window) == (32, 64, 64) and tuple(migrated.inference.tta) == ("identity",)
    assert "window" not in to_dict(migrated)["validation"] and migrated.version == CONFIG_VERSION
    with pytest.raises(ValueError, match="config version 3: this code reads versions 1 to 2"):
        upgrade({**today, "version": 3})
    with pytest.raises(ValueError, match="data.level: only level 0"):
        upgrade({**old, "data": {**old["data"], "level": 1}})
