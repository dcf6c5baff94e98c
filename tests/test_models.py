"""Model registry: output shapes at stride 1 and 2, weight-file loading, unknown names."""
from __future__ import annotations

import pytest
import torch

from config.experiment import ModelConfig
from config.yaml_cli import leaf_descriptions
from models.registry import MODEL_NAMES, SMP_ENCODERS, build_model

SMALL_DECODER = (32, 16, 8, 8, 4)


@pytest.mark.parametrize("stride", [1, 2])
def test_tiny_unet_shapes(stride: int) -> None:
    model = build_model(ModelConfig(name="unet-tiny", out_channels=7, output_stride=stride, widths=(4, 8, 16)))
    assert model.output_stride == stride and model.size_divisor == 4 * stride  # stride 2: strided stem
    out = model(torch.randn(2, 1, 8, 16, 24))
    assert out.shape == (2, 7, 8 // stride, 16 // stride, 24 // stride)
    with pytest.raises(ValueError, match="multiple of"):
        model(torch.randn(1, 1, 8, 16, 4 * stride + 2))


@pytest.mark.parametrize("name", ["unet-resnet18", "unet-effb0"])
@pytest.mark.parametrize("stride", [1, 2])
def test_smp_unet_shapes(name: str, stride: int) -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name, out_channels=6, output_stride=stride,
                                    decoder_channels=SMALL_DECODER)).eval()
    assert model.output_stride == stride and model.size_divisor == 32
    with torch.no_grad():
        out = model(torch.randn(1, 1, 32, 64, 32))
    assert out.shape == (1, 6, 32 // stride, 64 // stride, 32 // stride)


def test_stride2_has_fewer_decoder_blocks() -> None:
    full = build_model(ModelConfig(name="unet-resnet18", decoder_channels=SMALL_DECODER))
    half = build_model(ModelConfig(name="unet-resnet18", decoder_channels=SMALL_DECODER, output_stride=2))
    assert len(full.decoder.blocks) == 5 and len(half.decoder.blocks) == 4
    assert half.segmentation_head[0].in_channels == SMALL_DECODER[-2]


def test_input_not_multiple_of_divisor_is_error() -> None:
    model = build_model(ModelConfig(name="unet-tiny", widths=(4, 8, 16)))
    with pytest.raises(ValueError, match="multiple of 4"):
        model(torch.randn(1, 1, 8, 8, 6))


def test_encoder_weights_roundtrip(tmp_path) -> None:
    source = build_model(ModelConfig(name="unet-resnet18", decoder_channels=SMALL_DECODER))
    path = tmp_path / "enc.pt"
    torch.save(source.encoder.state_dict(), path)
    loaded = build_model(ModelConfig(name="unet-resnet18", decoder_channels=SMALL_DECODER,
                                     encoder_weights=str(path)))
    for key, value in source.encoder.state_dict().items():
        assert torch.equal(loaded.encoder.state_dict()[key], value), key
    # a whole-model checkpoint ("encoder." prefixed keys inside "state_dict") loads too
    full_path = tmp_path / "full.pt"
    torch.save({"state_dict": source.state_dict()}, full_path)
    again = build_model(ModelConfig(name="unet-resnet18", decoder_channels=SMALL_DECODER,
                                    encoder_weights=str(full_path)))
    assert torch.equal(again.encoder.conv1.weight, source.encoder.conv1.weight)


def test_encoder_weights_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        build_model(ModelConfig(name="unet-resnet18", encoder_weights=str(tmp_path / "nope.pt")))
    other = build_model(ModelConfig(name="unet-effb0", decoder_channels=SMALL_DECODER))
    path = tmp_path / "effb0.pt"
    torch.save(other.encoder.state_dict(), path)
    with pytest.raises(ValueError, match="does not match"):
        build_model(ModelConfig(name="unet-resnet18", decoder_channels=SMALL_DECODER, encoder_weights=str(path)))


def test_unknown_name_lists_models() -> None:
    with pytest.raises(ValueError, match="unet-resnet34.*unet-tiny"):
        build_model(ModelConfig(name="unet-vgg"))
    assert {"unet-resnet34", "unet-resnet101", "unet-effb3", "unet-tiny"} <= set(MODEL_NAMES)
    assert SMP_ENCODERS["unet-effb3"] == "efficientnet-b3"
    described = leaf_descriptions(ModelConfig)["name"]  # --help names exactly the registry's models
    assert all(name in described for name in MODEL_NAMES)
