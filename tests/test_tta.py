"""TTA transforms invert exactly (stride 1 and 2) and ensembles/TTA of equivariant models change nothing."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from inference.probabilities import member_terms, members_probabilities, predict_probabilities
from inference.sliding_window import ensemble_window_logits, sliding_window_logits
from inference.tta import TRANSFORM_NAMES, TRANSFORMS, get_transforms
from tests.test_sliding_window import DeltaConv, Subsample
from particles import CZII_PARTICLES


@pytest.mark.parametrize("name", TRANSFORM_NAMES)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("shape", [(6, 8, 10), (7, 9, 9)])
def test_every_transform_round_trips_exactly(name: str, stride: int, shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    volume = torch.randn(shape)
    transform = TRANSFORMS[name]
    moved = transform.forward(volume[None], stride)  # [1, D', H', W'] (leading dims pass through)
    model_out = moved[..., ::stride, ::stride, ::stride]  # a stride-s "model": output j = input s*j
    back = transform.inverse(model_out, [-(-n // stride) for n in shape])
    assert torch.equal(back[0], volume[::stride, ::stride, ::stride])


def test_plain_flip_is_misaligned_on_even_stride2_grid() -> None:
    """Why forward() pads: without it a flipped even axis lands half a coarse voxel off."""
    volume = torch.arange(8.0)[:, None, None].expand(8, 4, 4)
    naive = torch.flip(torch.flip(volume, [0])[::2], [0])
    assert not torch.equal(naive, volume[::2])


@pytest.mark.parametrize("model, stride", [(DeltaConv(), 1), (Subsample(), 2)])
@pytest.mark.parametrize("shape", [(12, 16, 20), (13, 15, 17)])
@pytest.mark.parametrize("window", [(8, 8, 8), (8, 8, 12)])  # a quarter turn of the second swaps y and x
@pytest.mark.parametrize("name", TRANSFORM_NAMES)
def test_each_view_of_an_equivariant_model_equals_no_tta(model: nn.Module, stride: int, shape: tuple[int, ...],
                                                          window: tuple[int, int, int], name: str) -> None:
    """Window by window, a reversed axis at stride 2 is read one voxel early: every view lands exactly on
    the identity view's grid (an off-grid view would give the neighbouring voxel's value)."""
    torch.manual_seed(2)
    volume = torch.randn(shape)
    plain = sliding_window_logits(model, volume, window, 0.25, 4, 3, stride)
    view = ensemble_window_logits([model], volume, window, 0.25, 4, 3, stride, views=[TRANSFORMS[name]])
    torch.testing.assert_close(view, plain, rtol=1e-6, atol=1e-6)


def test_one_pass_equals_the_mean_of_separate_passes() -> None:
    """Models x views in one pass (each window cut once, batched by shape) = the mean of each model's each
    view predicted alone, for real convolutional nets that are not flip-equivariant."""
    from models.basic_unet import BasicUNet3d

    torch.manual_seed(4)
    models = [BasicUNet3d(3, (4, 8), output_stride=2).eval() for _ in range(2)]
    volume = torch.randn(14, 18, 22)
    views = get_transforms(["identity", "flip_z", "flip_y", "rot90_1"])
    fused = ensemble_window_logits(models, volume, (8, 16, 16), 0.25, 3, 3, 2, views=views)
    alone = torch.stack([ensemble_window_logits([m], volume, (8, 16, 16), 0.25, 1, 3, 2, views=[v])
                         for m in models for v in views]).mean(0)
    torch.testing.assert_close(fused, alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(alone, ensemble_window_logits(models[:1], volume, (8, 16, 16), 0.25, 1, 3, 2),
                              atol=1e-3)  # the views and models do differ


def test_a_window_larger_than_the_volume_shrinks_to_it() -> None:
    """The window is cut to the volume (rounded up to the model's divisor): a lone window of any requested
    size gives the model's output on the volume padded only to that divisor."""
    torch.manual_seed(5)
    volume = torch.randn(10, 12, 13)
    big = sliding_window_logits(DeltaConv(size_divisor=4), volume, (64, 64, 64), 0.25, 1, 3, 1, pad_mode="constant")
    fitted = sliding_window_logits(DeltaConv(size_divisor=4), volume, (12, 12, 16), 0.25, 1, 3, 1,
                                   pad_mode="constant")
    torch.testing.assert_close(big, fitted)


def test_tta_detects_non_equivariant_model() -> None:
    class XRamp(nn.Module):
        output_stride, size_divisor = 1, 1

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.arange(x.shape[-1], dtype=x.dtype)

    volume = torch.zeros(4, 8, 8)
    flipped = ensemble_window_logits([XRamp()], volume, (4, 8, 8), 0.0, 1, 1, 1, views=[TRANSFORMS["flip_x"]])
    assert torch.equal(flipped[0, 0, 0], torch.arange(7.0, -1.0, -1.0))


def test_unknown_or_empty_transform_list_is_error() -> None:
    with pytest.raises(ValueError, match="flip_w"):
        get_transforms(["identity", "flip_w"])
    with pytest.raises(ValueError, match="empty"):
        get_transforms([])


class Biased(nn.Module):
    """Sigmoid-kind stand-in (6 channels) at a given stride with a constant logit offset."""

    size_divisor = 4

    def __init__(self, stride: int, bias: float, channels: int = 6) -> None:
        super().__init__()
        self.output_stride, self.bias, self.channels = stride, bias, channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.output_stride
        return x[:, :, ::s, ::s, ::s].repeat(1, self.channels, 1, 1, 1) + self.bias


@pytest.mark.parametrize("stride", [1, 2])
def test_ensemble_of_identical_models_equals_one(stride: int) -> None:
    torch.manual_seed(3)
    volume = torch.randn(10, 12, 12)
    args = ("sigmoid", (8, 8, 8), 0.5, 2)
    one = predict_probabilities([Biased(stride, 0.3)], volume, *args, tta=["identity"], num_classes=6)
    two = predict_probabilities([Biased(stride, 0.3), Biased(stride, 0.3)], volume, *args,
                                tta=["identity", "flip_z", "rot90_1"], num_classes=6)
    assert one.shape == (6, *(-(-n // stride) for n in volume.shape))
    torch.testing.assert_close(two, one, rtol=1e-5, atol=1e-6)
    want = torch.sigmoid(volume[::stride, ::stride, ::stride] + 0.3)
    torch.testing.assert_close(one[2], want, rtol=1e-5, atol=1e-6)


def test_average_logits_versus_probabilities() -> None:
    volume = torch.zeros(8, 8, 8)
    models = [Biased(1, -2.0), Biased(1, 4.0)]
    logit_avg = predict_probabilities(models, volume, "sigmoid", (8, 8, 8), 0.0, 1,
                                      num_classes=CZII_PARTICLES.num_classes)
    prob_avg = predict_probabilities(models, volume, "sigmoid", (8, 8, 8), 0.0, 1, average="probabilities",
                                     num_classes=CZII_PARTICLES.num_classes)
    torch.testing.assert_close(logit_avg, torch.full_like(logit_avg, torch.sigmoid(torch.tensor(1.0)).item()))
    want = (torch.sigmoid(torch.tensor(-2.0)) + torch.sigmoid(torch.tensor(4.0))).item() / 2
    torch.testing.assert_close(prob_avg, torch.full_like(prob_avg, want))


@pytest.mark.parametrize("average", ["logits", "probabilities"])
def test_any_subset_of_members_equals_its_ensemble_in_one_pass(average: str) -> None:
    """Each model's own TTA mean, kept apart, gives the ensemble of any subset exactly as one pass over that
    subset does (what bench_ensemble_size scores ensembles of every size from)."""
    from models.basic_unet import BasicUNet3d

    torch.manual_seed(5)
    models = [BasicUNet3d(7, (4, 8), output_stride=2).eval() for _ in range(3)]
    volume = torch.randn(12, 16, 16)
    args = ("softmax", (8, 16, 16), 0.25, 2, ["identity", "flip_z", "rot90_1"], average)
    terms = member_terms(models, volume, *args, num_classes=6)
    assert terms.shape == (3, 7 if average == "logits" else 6, 6, 8, 8)  # logits keep the background
    for subset in ([0], [1, 2], [2, 0], [0, 1, 2]):
        alone = predict_probabilities([models[i] for i in subset], volume, *args, num_classes=6)
        torch.testing.assert_close(members_probabilities(terms[subset], "softmax", average, num_classes=6), alone,
                                   rtol=1e-5, atol=1e-6)
    assert not torch.allclose(members_probabilities(terms[[0]], "softmax", average, num_classes=6),
                              members_probabilities(terms[[1]], "softmax", average, num_classes=6))


def test_softmax_drops_background_and_mismatches_are_errors() -> None:
    volume = torch.randn(8, 8, 8)
    probs = predict_probabilities([Biased(1, 0.0, channels=7)], volume, "softmax", (8, 8, 8), 0.0, 1,
                                  num_classes=CZII_PARTICLES.num_classes)
    torch.testing.assert_close(probs, torch.full_like(probs, 1 / 7))
    with pytest.raises(ValueError, match="output_stride"):
        predict_probabilities([Biased(1, 0.0), Biased(2, 0.0)], volume, "sigmoid", (8, 8, 8), 0.0, 1,
                              num_classes=CZII_PARTICLES.num_classes)
    with pytest.raises(ValueError, match="expected"):
        predict_probabilities([Biased(1, 0.0, channels=7)], volume, "sigmoid", (8, 8, 8), 0.0, 1,
                              num_classes=CZII_PARTICLES.num_classes)
    with pytest.raises(ValueError, match="average"):
        predict_probabilities([Biased(1, 0.0)], volume, "sigmoid", (8, 8, 8), 0.0, 1, average="median",
                              num_classes=CZII_PARTICLES.num_classes)


def test_every_transform_and_padding_the_config_offers_is_implemented() -> None:
    """The config's names (choices.TTAName, PadMode) each work: every view is undone by its inverse, every
    padding pads."""
    from choices import PadMode, TTAName, values
    from inference.sliding_window import _pad_volume

    volume = torch.randn(4, 6, 6)
    for view in get_transforms(values(TTAName)):
        torch.testing.assert_close(view.inverse(view.forward(volume[None, None]), volume.shape)[0, 0], volume)
    for mode in values(PadMode):
        padded = _pad_volume(volume, (6, 8, 8), mode)
        assert padded.shape == (6, 8, 8) and torch.equal(padded[:4, :6, :6], volume), mode