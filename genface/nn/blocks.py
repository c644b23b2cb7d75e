"""Plain convolutional blocks shared by DCGAN (Radford et al., arXiv 1511.06434) and the VAE."""

from __future__ import annotations

from torch import nn


def _activation(name: str | None) -> nn.Module:
    """Activation by name: ``"relu"``, ``"lrelu"`` (slope 0.2, as in DCGAN's D), ``"tanh"``, or None."""
    table = {
        "relu": lambda: nn.ReLU(inplace=True),
        "lrelu": lambda: nn.LeakyReLU(0.2, inplace=True),
        "tanh": nn.Tanh,
        None: nn.Identity,
    }
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; valid: {sorted(map(str, table))}")
    return table[name]()


class ConvBlock(nn.Sequential):
    """Conv2d (kernel 4, stride 2, padding 1 by default: halves H and W) + optional BatchNorm + activation.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: convolution kernel size.
        stride: convolution stride (2 halves the resolution).
        padding: zero padding.
        batch_norm: add a BatchNorm2d after the convolution (False = none, as on DCGAN D's first layer).
        activation: ``"relu"``, ``"lrelu"``, ``"tanh"`` or None for none.
        bias: convolution bias (DCGAN uses none, BatchNorm provides the shift).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 4, stride: int = 2,
                 padding: int = 1, batch_norm: bool = True, activation: str | None = "lrelu",
                 bias: bool = False):
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(_activation(activation))
        super().__init__(*layers)


class UpConvBlock(nn.Sequential):
    """ConvTranspose2d (kernel 4, stride 2, padding 1 by default: doubles H and W) + optional BatchNorm + activation.

    Args: as :class:`ConvBlock`, for the transposed convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 4, stride: int = 2,
                 padding: int = 1, batch_norm: bool = True, activation: str | None = "relu",
                 bias: bool = False):
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        ]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(_activation(activation))
        super().__init__(*layers)


def dcgan_init_(module: nn.Module) -> None:
    """DCGAN's initialisation (Radford et al. §4): conv weights N(0, 0.02), BatchNorm weight N(1, 0.02), bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
