"""Progressive-growing helpers and the ProGAN / StyleGAN discriminator.

ProGAN (Karras et al., arXiv 1710.10196) §2, Fig. 2: networks grow from 4x4; while a new
resolution is faded in, the new layers are blended with the upsampled (G) / downsampled (D)
output of the previous resolution with weight ``alpha`` rising 0 -> 1. Stage ``k`` works at
``4 · 2**k`` pixels. The same discriminator (with "bilinear" resampling) is StyleGAN's
(arXiv 1812.04948, App. C).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genface.nn.equalized import EqualConv2d, EqualLinear
from genface.nn.minibatch import MinibatchStdDev
from genface.nn.resample import Downsample

__all__ = [
    "check_resolution", "num_stages", "stage_resolution", "stage_of", "progan_channels",
    "fade_in_synthesis", "ProgressiveDiscriminator",
]

SQRT2 = math.sqrt(2)


def check_resolution(resolution: int, low: int = 8, high: int = 1024, model: str = "") -> int:
    """Return ``resolution`` if it is a power of two in ``[low, high]``, else raise.

    The one resolution rule of genface's models: each model config calls it once, in its
    ``__post_init__`` (DCGAN and the VAE: 32..128; ProGAN, StyleGAN, StyleGAN2: 8..1024).
    """
    if not isinstance(resolution, int) or resolution < low or resolution > high or resolution & (resolution - 1):
        valid = [2**k for k in range(low.bit_length() - 1, high.bit_length())]
        who = f"{model} supports resolutions {valid}: " if model else ""
        raise ValueError(f"{who}resolution must be a power of two in [{low}, {high}], got {resolution}")
    return resolution


def fade_in_synthesis(block, to_rgb, upsample, stage: int, alpha: float) -> torch.Tensor:
    """The progressive generator's output at ``stage`` with fade-in (ProGAN §2, Fig. 2).

    Runs ``block(0)`` .. ``block(stage)`` and reads the image with ``to_rgb[stage]``; while
    ``alpha < 1`` it is ``lerp(upsample(to_rgb[stage-1](x_{stage-1})), to_rgb[stage](x_stage),
    alpha)``, so at ``alpha = 0`` it is exactly stage ``stage - 1``'s image upsampled. Shared by
    ProGAN's and StyleGAN's synthesis (StyleGAN config A *is* ProGAN).

    Args:
        block: ``block(k, x)`` -> the features of stage ``k`` (``x`` = stage ``k-1``'s; ``None`` for k = 0).
        to_rgb: per-stage 1x1 convs to RGB (indexable).
        upsample: the 2x upsampling of the previous stage's image.
        stage: the stage to render (already checked).
        alpha: fade-in weight of ``stage`` (1 = fully faded in).
    """
    x = block(0, None)
    for k in range(1, stage):
        x = block(k, x)
    if stage == 0:
        return to_rgb[0](x)
    y = to_rgb[stage](block(stage, x))
    if alpha < 1:
        y = torch.lerp(upsample(to_rgb[stage - 1](x)), y, float(alpha))
    return y


def num_stages(resolution: int) -> int:
    """Number of progressive stages from 4x4 to ``resolution`` (4 -> 1, 8 -> 2, ...)."""
    return int(math.log2(resolution)) - 1


def stage_resolution(stage: int) -> int:
    """Pixels of stage ``stage``: ``4 · 2**stage``."""
    return 4 * 2**stage


def stage_of(resolution: int) -> int:
    """Inverse of :func:`stage_resolution`."""
    return int(math.log2(resolution)) - 2


def progan_channels(resolution: int, fmap_base: int, fmap_max: int, fmap_min: int = 1) -> int:
    """ProGAN's ``nf``: ``min(fmap_base / 2**(log2(res) - 1), fmap_max)`` feature maps at ``res``.

    With ``fmap_base=8192, fmap_max=512`` this gives 512 up to 32x32, then 256, 128, 64, 32,
    16 at 1024x1024 (ProGAN Table 2).
    """
    return max(min(fmap_base // 2 ** (int(math.log2(resolution)) - 1), fmap_max), fmap_min)


def check_stage(stage: int | None, stages: int) -> int:
    """``None`` -> the last stage; otherwise validate ``0 <= stage < stages``."""
    if stage is None:
        return stages - 1
    if not 0 <= stage < stages:
        raise ValueError(f"stage must be in [0, {stages - 1}] (4x4 .. {stage_resolution(stages - 1)}px), got {stage}")
    return int(stage)


class _DBlock(nn.Module):
    """conv3x3(C_res -> C_res), LReLU, conv3x3(C_res -> C_res/2), LReLU, 2x down."""

    def __init__(self, in_channels: int, out_channels: int, resample: str):
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, gain=SQRT2)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, gain=SQRT2)
        self.act = nn.LeakyReLU(0.2)
        self.down = Downsample(resample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.conv1(self.act(self.conv0(x)))))


class _DEpilogue(nn.Module):
    """4x4 head: minibatch stddev, conv3x3, FC(C·16 -> C), FC(C -> 1) (ProGAN Table 2)."""

    def __init__(self, channels: int, mbstd_group_size: int | None, mbstd_num_channels: int):
        super().__init__()
        self.mbstd = MinibatchStdDev(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels else None
        self.conv = EqualConv2d(channels + mbstd_num_channels, channels, 3, gain=SQRT2)
        self.fc = EqualLinear(channels * 16, channels, gain=SQRT2)
        self.out = EqualLinear(channels, 1, gain=1.0)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.act(self.conv(x))
        x = self.act(self.fc(x.flatten(1)))
        return self.out(x)


class ProgressiveDiscriminator(nn.Module):
    """ProGAN's discriminator (Table 2, right) with fade-in; StyleGAN's with ``resample="bilinear"``.

    ``from_rgb[k]`` (1x1 conv + LReLU) reads images at stage ``k``; ``blocks[k]`` (``k >= 1``)
    takes stage ``k`` features down to stage ``k - 1``; ``epilogue`` is the 4x4 head with the
    minibatch-stddev layer. Returns one raw score per image ``(N, 1)``.

    Args:
        resolution: final resolution (power of two, 8..1024).
        channels: feature maps per resolution ``{res: C}`` for 4..resolution.
        img_channels: image channels.
        resample: ``"nearest"`` (average-pool down, ProGAN) or ``"bilinear"`` (FIR [1,3,3,1]).
        mbstd_group_size: group size of the minibatch-stddev layer (4).
        mbstd_num_channels: stddev feature maps (1); 0 = no minibatch-stddev layer.
    """

    def __init__(self, resolution: int, channels: dict[int, int], img_channels: int = 3,
                 resample: str = "nearest", mbstd_group_size: int | None = 4,
                 mbstd_num_channels: int = 1):
        super().__init__()
        self.resolution, self.img_channels = check_resolution(resolution), img_channels
        self.num_stages = num_stages(resolution)
        ch = [channels[stage_resolution(k)] for k in range(self.num_stages)]
        self.from_rgb = nn.ModuleList(
            EqualConv2d(img_channels, c, 1, gain=SQRT2) for c in ch
        )
        self.blocks = nn.ModuleList(
            [nn.Identity()] + [_DBlock(ch[k], ch[k - 1], resample) for k in range(1, self.num_stages)]
        )
        self.epilogue = _DEpilogue(ch[0], mbstd_group_size, mbstd_num_channels)
        self.act = nn.LeakyReLU(0.2)
        self.downsample = Downsample(resample)

    def forward(self, x: torch.Tensor, stage: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        """Score images ``(N, img_channels, R, R)`` with ``R = 4 · 2**stage``.

        Args:
            x: images at the stage's resolution.
            stage: progressive stage (0 = 4x4); ``None`` = the final resolution.
            alpha: fade-in weight of the newest block (1 = fully faded in; 0 = the image is
                downsampled and read by the previous stage's ``from_rgb``).
        """
        stage = check_stage(stage, self.num_stages)
        res = stage_resolution(stage)
        if x.ndim != 4 or x.shape[1:] != (self.img_channels, res, res):
            raise ValueError(
                f"discriminator at stage {stage} expects (N, {self.img_channels}, {res}, {res}), got {tuple(x.shape)}"
            )
        h = self.act(self.from_rgb[stage](x))
        if stage > 0:
            h = self.blocks[stage](h)
            if alpha < 1:
                skip = self.act(self.from_rgb[stage - 1](self.downsample(x)))
                h = torch.lerp(skip, h, float(alpha))
        for k in range(stage - 1, 0, -1):
            h = self.blocks[k](h)
        return self.epilogue(h)
