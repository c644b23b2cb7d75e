"""Equalised-learning-rate layers (Karras et al., ProGAN, arXiv 1710.10196, §4.1).

ProGAN stores every weight as ``w_hat ~ N(0, 1)`` and multiplies it at run time by He's
constant ``c = gain / sqrt(fan_in)`` ("w_hat_i = w_i / c", §4.1), so that Adam's
scale-invariant update moves every layer at the same speed whatever its fan-in.

StyleGAN (Karras et al., arXiv 1812.04948, Appendix C) adds a learning-rate multiplier
``lr_mul`` (0.01 in the mapping network): weights are initialised ``N(0, 1/lr_mul^2)`` and
scaled at run time by ``c · lr_mul``; biases are stored divided by ``lr_mul`` and multiplied
back at run time. The run-time weight therefore has std ``gain / sqrt(fan_in)`` whatever
``lr_mul`` is, while its effective learning rate is ``lr · lr_mul``.

The activation ``"lrelu"`` follows StyleGAN2 (NVlabs ``bias_act``): LeakyReLU(0.2) multiplied
by ``sqrt(2)`` so that the layer keeps unit variance with ``gain = 1``. ProGAN / StyleGAN
put the same ``sqrt(2)`` into the weight (``gain = sqrt(2)``) and apply a plain LeakyReLU;
:func:`leaky_relu` with ``act_gain=1`` does that.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EqualLinear", "EqualConv2d", "leaky_relu", "ACTIVATIONS"]

#: Activation names accepted by the equalised layers. ``None``/"linear" = identity.
ACTIVATIONS = ("linear", "lrelu")


def leaky_relu(x: torch.Tensor, negative_slope: float = 0.2, act_gain: float = math.sqrt(2)):
    """LeakyReLU(``negative_slope``) times ``act_gain`` (StyleGAN2's ``bias_act`` default gain)."""
    x = F.leaky_relu(x, negative_slope)
    return x * act_gain if act_gain != 1 else x


def _check_activation(activation: str | None) -> str:
    activation = activation or "linear"
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid: {list(ACTIVATIONS)} or None")
    return activation


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate (ProGAN §4.1, StyleGAN App. C).

    ``y = act(x @ (w_hat · gain/sqrt(in_features) · lr_mul)^T + b_hat · lr_mul)``.

    Args:
        in_features: input width (the fan-in).
        out_features: output width.
        bias: learn an additive bias (False = none).
        bias_init: initial value of the *run-time* bias (1.0 for the AdaIN/modulation
            scale affines so that styles start at identity).
        lr_mul: learning-rate multiplier (StyleGAN mapping network: 0.01); 1.0 = plain
            equalised LR.
        gain: numerator of He's constant; ``sqrt(2)`` for layers followed by a plain
            LeakyReLU (ProGAN, StyleGAN), 1.0 for linear outputs or with ``activation="lrelu"``.
        activation: ``None``/``"linear"`` (identity) or ``"lrelu"`` (LeakyReLU 0.2 · sqrt(2)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 bias_init: float = 0.0, lr_mul: float = 1.0, gain: float = 1.0,
                 activation: str | None = None):
        super().__init__()
        if lr_mul <= 0:
            raise ValueError(f"lr_mul must be > 0, got {lr_mul}")
        self.in_features, self.out_features = in_features, out_features
        self.lr_mul = lr_mul
        self.activation = _check_activation(activation)
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul)) if bias else None
        self.weight_gain = gain / math.sqrt(in_features) * lr_mul

    def runtime_weight(self) -> torch.Tensor:
        """The weight actually applied: ``w_hat · gain/sqrt(fan_in) · lr_mul``."""
        return self.weight * self.weight_gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"EqualLinear expected (..., {self.in_features}), got {tuple(x.shape)}")
        b = self.bias * self.lr_mul if self.bias is not None else None
        x = F.linear(x, self.runtime_weight(), b)
        return leaky_relu(x) if self.activation == "lrelu" else x

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, bias={self.bias is not None}, "
                f"lr_mul={self.lr_mul}, activation={self.activation}")


class EqualConv2d(nn.Module):
    """2-D convolution with equalised learning rate (ProGAN §4.1).

    The run-time weight is ``w_hat · gain / sqrt(in_channels · k · k) · lr_mul``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        stride: convolution stride.
        padding: zero padding; ``None`` = ``kernel_size // 2`` ("same" for odd kernels).
        bias: learn a per-channel bias (False = none; e.g. when the bias is added after
            noise injection as in StyleGAN).
        bias_init: initial run-time bias.
        lr_mul: learning-rate multiplier (1.0 = plain equalised LR).
        gain: numerator of He's constant (``sqrt(2)`` before a plain LeakyReLU, 1.0 for
            toRGB / linear outputs or with ``activation="lrelu"``).
        activation: ``None``/``"linear"`` or ``"lrelu"`` (LeakyReLU 0.2 · sqrt(2)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | None = None, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, gain: float = 1.0, activation: str | None = None):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.padding = kernel_size // 2 if padding is None else padding
        self.lr_mul = lr_mul
        self.activation = _check_activation(activation)
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, kernel_size, kernel_size) / lr_mul
        )
        self.bias = nn.Parameter(torch.full((out_channels,), bias_init / lr_mul)) if bias else None
        self.weight_gain = gain / math.sqrt(in_channels * kernel_size * kernel_size) * lr_mul

    def runtime_weight(self) -> torch.Tensor:
        """The kernel actually applied: ``w_hat · gain/sqrt(fan_in) · lr_mul``."""
        return self.weight * self.weight_gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"EqualConv2d expected (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        b = (self.bias * self.lr_mul).to(x.dtype) if self.bias is not None else None
        x = F.conv2d(x, self.runtime_weight().to(x.dtype), b, stride=self.stride, padding=self.padding)
        return leaky_relu(x) if self.activation == "lrelu" else x

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, "
                f"lr_mul={self.lr_mul}, activation={self.activation}")
