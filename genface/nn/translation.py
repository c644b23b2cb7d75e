"""Layers of the image-to-image translation networks (Johnson et al. 2016; Isola et al. 2017;
Zhu et al. 2017): the ResNet generator's blocks and the PatchGAN discriminator.

CycleGAN's notation (Zhu et al., arXiv 1703.10593, appendix 7.2): ``c7s1-k`` is a 7x7
convolution, stride 1, ``k`` filters, instance norm and ReLU; ``dk`` a 3x3 convolution,
stride 2, instance norm, ReLU; ``Rk`` a residual block of two 3x3 convolutions with ``k``
filters; ``uk`` a 3x3 fractionally strided convolution, stride 1/2, instance norm, ReLU;
``Ck`` a 4x4 convolution, stride 2, instance norm, LeakyReLU(0.2). Reflection padding
throughout the generator. With instance norm (``affine=False``, as the reference
implementation junyanz/pytorch-CycleGAN-and-pix2pix) the convolutions keep their bias; with
batch norm they drop it (the norm's shift replaces it).

Used by :mod:`genface.models.cyclegan` (generator and discriminator) and by
:mod:`genface.training.faceswap_gan` (the per-identity PatchGAN).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["NORMS", "norm_layer", "ConvNormAct", "ResidualBlock", "UpConvNormAct", "PatchGANDiscriminator",
           "patchgan_receptive_field"]

#: Normalisations accepted by :func:`norm_layer`.
NORMS = ("instance", "batch", "none")


def norm_layer(name: str, channels: int) -> nn.Module:
    """``"instance"`` (InstanceNorm2d, affine=False, no running stats: CycleGAN), ``"batch"``
    (BatchNorm2d, pix2pix) or ``"none"`` (Identity)."""
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {name!r}; valid: {list(NORMS)}")


def _conv_bias(norm: str) -> bool:
    # batch norm has a learned shift; instance norm without affine has none, so the conv keeps its bias
    return norm != "batch"


class ConvNormAct(nn.Sequential):
    """[reflection pad] + Conv2d + norm + activation: ``c7s1-k`` (kernel 7, stride 1), ``dk``
    (kernel 3, stride 2) and the PatchGAN's ``Ck`` (kernel 4, stride 2).

    Args:
        in_channels: input channels.
        out_channels: output channels ``k``.
        kernel_size: convolution kernel.
        stride: convolution stride.
        padding: padding on each side.
        padding_mode: ``"reflect"`` (a ReflectionPad2d before the conv, as the reference
            generator) or ``"zeros"`` (the conv's own zero padding, as the PatchGAN).
        norm: see :func:`norm_layer`.
        activation: ``"relu"``, ``"lrelu"`` (slope 0.2), ``"tanh"`` or None (none).
        bias: convolution bias; None = on unless ``norm="batch"``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, padding_mode: str = "zeros", norm: str = "instance",
                 activation: str | None = "relu", bias: bool | None = None):
        layers: list[nn.Module] = []
        if padding_mode == "reflect" and padding:
            layers.append(nn.ReflectionPad2d(padding))
            padding = 0
        elif padding_mode not in ("reflect", "zeros"):
            raise ValueError(f"padding_mode must be 'reflect' or 'zeros', got {padding_mode!r}")
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                bias=_conv_bias(norm) if bias is None else bias))
        layers.append(norm_layer(norm, out_channels))
        layers.append(_act(activation))
        super().__init__(*layers)


def _act(name: str | None) -> nn.Module:
    table = {"relu": lambda: nn.ReLU(True), "lrelu": lambda: nn.LeakyReLU(0.2, True), "tanh": nn.Tanh,
             None: nn.Identity}
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; valid: {sorted(map(str, table))}")
    return table[name]()


class UpConvNormAct(nn.Sequential):
    """``uk``: ConvTranspose2d kernel 3, stride 2, padding 1, output padding 1 (doubles H and
    W) + norm + ReLU.

    Args:
        in_channels: input channels.
        out_channels: output channels ``k``.
        norm: see :func:`norm_layer`.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "instance"):
        super().__init__(
            nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1,
                               bias=_conv_bias(norm)),
            norm_layer(norm, out_channels),
            nn.ReLU(True),
        )


class ResidualBlock(nn.Module):
    """``Rk``: x + [pad, conv3x3, norm, ReLU, (dropout), pad, conv3x3, norm](x) (He et al. 2016,
    as used by Johnson et al. 2016 and CycleGAN).

    Args:
        channels: ``k``, the channels in and out.
        norm: see :func:`norm_layer`.
        dropout: dropout probability between the convolutions (CycleGAN: 0 = none).
        padding_mode: ``"reflect"`` (CycleGAN) or ``"zeros"``.
    """

    def __init__(self, channels: int, norm: str = "instance", dropout: float = 0.0,
                 padding_mode: str = "reflect"):
        super().__init__()
        layers: list[nn.Module] = [ConvNormAct(channels, channels, 3, 1, 1, padding_mode, norm, "relu")]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(ConvNormAct(channels, channels, 3, 1, 1, padding_mode, norm, None))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PatchGANDiscriminator(nn.Module):
    """The PatchGAN of pix2pix and CycleGAN (Isola et al., arXiv 1611.07004, §3.2.2 and
    appendix 6.1.2; Zhu et al. 2017, appendix 7.2): ``C64-C128-C256-C512`` then a 1-channel
    convolution, a real/fake logit per overlapping image patch.

    With ``n_layers=3`` each output sees a 70x70 patch (:func:`patchgan_receptive_field`).
    Layout: C64 (stride 2, no norm), then ``n_layers - 1`` stride-2 ``Ck`` with doubling
    widths (capped at 8 * ``ndf``), one stride-1 ``Ck``, and a stride-1 4x4 conv to 1
    channel; LeakyReLU 0.2; zero padding 1. With ``ndf=64``, instance norm and 3 input
    channels it has 2,764,737 parameters (the reference prints 2.765 M).

    Args:
        in_channels: image channels.
        ndf: filters of the first layer (C64).
        n_layers: stride-2 layers (3 = the 70x70 PatchGAN; 1 = the 16x16 "PixelGAN" side).
        norm: see :func:`norm_layer` (CycleGAN: instance; never on the first layer).
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        layers: list[nn.Module] = [ConvNormAct(in_channels, ndf, 4, 2, 1, norm="none", activation="lrelu",
                                               bias=True)]
        c = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2**n, 8)
            layers.append(ConvNormAct(c, out, 4, 2 if n < n_layers else 1, 1, norm=norm, activation="lrelu"))
            c = out
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        self.in_channels = in_channels
        self.n_layers = n_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> patch logits (N, 1, H', W') (H' = H/8 - 2 with 3 layers)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"PatchGAN expects (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        return self.net(x)


def patchgan_receptive_field(n_layers: int = 3) -> int:
    """Side of the input patch one PatchGAN output sees: 70 for ``n_layers=3``, 34 for 2, 16 for 1."""
    # walk back from one output pixel: the last two convs are 4x4 stride 1, the others 4x4 stride 2
    rf = 1
    for stride in [1, 1] + [2] * n_layers:
        rf = (rf - 1) * stride + 4
    return rf
