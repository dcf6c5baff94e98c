"""3D U-Nets from segmentation-models-pytorch-3d, with an optional stride-2 ("partly U-Net") output."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import segmentation_models_pytorch_3d as smp

from dataio.torch_files import load_tensors
from segmentation_models_pytorch_3d.base import SegmentationHead



class SmpUnet3d(nn.Module):
    """smp-3d ``Unet`` (1 input channel); ``output_stride=2`` drops the last decoder block.

    smp-3d's decoder runs one block per encoder level, deepest first; its last block upsamples the
    stride-2 features to full resolution without a skip. With ``output_stride=2`` that block is removed
    and the segmentation head reads the stride-2 features (about half the decoder cost).
    """

    def __init__(self, encoder: str, out_channels: int, output_stride: int = 1,
                 encoder_weights: str | Path | None = None,
                 decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16), in_channels: int = 1,
                 deep_supervision: int = 0) -> None:
        super().__init__()
        depth = len(decoder_channels)
        net = smp.Unet(encoder_name=encoder, encoder_depth=depth, encoder_weights=None,
                       decoder_channels=tuple(decoder_channels), in_channels=in_channels,
                       classes=out_channels, strides=((2, 2, 2),) * depth)
        self.encoder = net.encoder
        self.decoder = net.decoder
        if output_stride == 2:
            self.decoder.blocks = nn.ModuleList(list(self.decoder.blocks)[:-1])
            self.segmentation_head = SegmentationHead(decoder_channels[-2], out_channels, kernel_size=3)
        else:
            self.segmentation_head = net.segmentation_head
        levels = len(self.decoder.blocks)
        if not 0 <= deep_supervision < levels:
            raise ValueError(f"deep supervision on {deep_supervision} coarser levels needs more than "
                             f"{deep_supervision + 1} decoder blocks; this decoder has {levels}")
        widths = [block.conv2[0].out_channels for block in self.decoder.blocks]  # finest last
        # extra heads on the decoder blocks before the last (each at twice the stride of the next), training only
        self.aux_heads = nn.ModuleList([nn.Conv3d(widths[-1 - i], out_channels, 1)
                                        for i in range(1, deep_supervision + 1)])
        self.output_stride = output_stride
        self.size_divisor = 2 ** depth
        self.out_channels = out_channels
        if encoder_weights is not None:
            load_encoder_weights(self.encoder, encoder_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, D, H, W]`` -> logits ``[B, C, D/s, H/s, W/s]``."""
        return self.segmentation_head(self._decode(x)[-1])

    def forward_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output, then one per deep-supervision head, each level half the resolution of the one before."""
        decoded = self._decode(x)
        return ([self.segmentation_head(decoded[-1])]
                + [head(decoded[-1 - i]) for i, head in enumerate(self.aux_heads, 1)])

    def _decode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every decoder block's features, coarsest first (smp-3d's ``UnetDecoder.forward``, keeping each)."""
        shape = x.shape[-3:]
        if any(n % self.size_divisor for n in shape):
            raise ValueError(f"input spatial shape {tuple(shape)} must be a multiple of {self.size_divisor}")
        features = self.encoder(x)[1:][::-1]  # drop the full-resolution input, deepest first
        skips = features[1:]
        x = self.decoder.center(features[0])
        decoded = []
        for i, block in enumerate(self.decoder.blocks):
            x = block(x, skips[i] if i < len(skips) else None)
            decoded.append(x)
        return decoded


def load_encoder_weights(encoder: nn.Module, path: str | Path) -> None:
    """Load a local state dict into ``encoder``; a missing file or mismatched keys/shapes is an error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder weights file {path} does not exist")
    state = load_tensors(path, "encoder weights file")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"encoder weights file {path} does not hold a state dict")
    if any(k.startswith("encoder.") for k in state):
        state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    own = encoder.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        raise ValueError(f"encoder weights file {path} does not match the encoder: "
                         f"missing keys {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                         f"unexpected keys {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}, "
                         f"wrong shapes {wrong[:5]}{'...' if len(wrong) > 5 else ''}")
    encoder.load_state_dict(state, strict=True)
