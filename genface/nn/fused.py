"""Fast paths for StyleGAN2's layers: the same maths as the plain layers, in fewer passes.

Each function here equals a composition of plain layers to float rounding (tested forward and
backward at 1e-5 in ``tests/test_fast_ops.py``); the models pick them with a flag
(``StyleGAN2Config.fast_ops``) so that the plain path stays one switch away.

* :func:`bias_lrelu`: NVlabs' ``bias_act`` epilogue (stylegan2-ada-pytorch
  ``torch_utils/ops/bias_act.py``, ``act='lrelu'``, ``gain=sqrt(2)``) of a StyleGAN2 layer,
  ``gain · lrelu(x · d + B·noise + b)`` (StyleGAN2 Fig. 2d: demodulation ``d``, noise ``B``,
  bias ``b``). LeakyReLU is positively homogeneous (``g · lrelu(v) = lrelu(g · v)`` for
  ``g > 0``), so the gain goes onto the small factors ``d``, ``B`` and ``b`` instead of a
  pass over the activations, and ``x · d + (noise + bias)`` is one ``addcmul``: three
  passes over the feature map in place of six, fewer in the backward pass.
* :func:`fold_lrelu_gain`: the same identity for equalised convolutions and linear layers
  (``gain · lrelu(conv(x, w) + b) = lrelu(conv(x, g·w) + g·b)``): the gain multiplies the
  weight, not the output.
* :class:`FIRDownsampleStrided`: a FIR low-pass followed by a stride-2 1x1 convolution (the
  residual skip of the StyleGAN2 discriminator) computes the blurred map at every pixel and
  keeps a quarter; filtering with stride 2 (NVlabs ``conv2d_resample`` for 1x1 kernels:
  ``downsample2d`` first, then the convolution) computes only the kept quarter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genface.nn.resample import make_kernel, upfirdn2d

__all__ = ["bias_lrelu", "fold_lrelu_gain", "FIRDownsampleStrided"]


def bias_lrelu(x: torch.Tensor, bias: torch.Tensor | None = None, scale: torch.Tensor | None = None,
               addend: torch.Tensor | None = None, negative_slope: float = 0.2,
               gain: float = math.sqrt(2)) -> torch.Tensor:
    """``gain · leaky_relu(x · scale + addend + bias)`` in one ``addcmul`` and one LeakyReLU.

    Args:
        x: ``(N, C, H, W)`` features (a convolution's output).
        bias: ``(C,)`` per-channel bias; ``None`` = none.
        scale: ``(N, C)`` per-sample per-channel factor (StyleGAN2's demodulation
            coefficients in the unfused modulated convolution); ``None`` = 1.
        addend: a tensor broadcastable to ``x`` (the scaled noise ``B · noise``, ``(N, 1, H, W)``);
            ``None`` = none.
        negative_slope: LeakyReLU slope (0.2).
        gain: output gain, must be > 0 (``sqrt(2)``, StyleGAN2's ``bias_act`` default).
    """
    if gain <= 0:
        raise ValueError(f"bias_lrelu needs gain > 0 (LeakyReLU is homogeneous only for positive factors), got {gain}")
    if x.ndim != 4:
        raise ValueError(f"bias_lrelu expects (N, C, H, W), got {tuple(x.shape)}")
    shift = None
    if bias is not None:
        shift = (bias * gain).view(1, -1, 1, 1).to(x.dtype)
    if addend is not None:
        shift = addend * gain if shift is None else torch.add(shift, addend, alpha=gain)
    if scale is not None:
        s = (scale * gain).to(x.dtype)[:, :, None, None]
        y = torch.mul(x, s) if shift is None else torch.addcmul(shift, x, s)
    else:
        y = x * gain if shift is None else torch.add(shift, x, alpha=gain)
    return F.leaky_relu(y, negative_slope)


def fold_lrelu_gain(weight: torch.Tensor, bias: torch.Tensor | None, gain: float = math.sqrt(2)):
    """``(gain · weight, gain · bias)``, so that ``leaky_relu(layer(x; gain·w, gain·b))`` equals
    ``gain · leaky_relu(layer(x; w, b))`` (LeakyReLU is positively homogeneous)."""
    if gain <= 0:
        raise ValueError(f"fold_lrelu_gain needs gain > 0, got {gain}")
    return weight * gain, (bias * gain if bias is not None else None)


class FIRDownsampleStrided(nn.Module):
    """FIR low-pass evaluated only at the kept samples (``upfirdn2d`` with ``down=factor``).

    Equal to ``Blur(kernel, pad)`` followed by keeping every ``factor``-th sample (what a
    stride-``factor`` 1x1 convolution after the blur keeps), without the discarded outputs.

    Args:
        kernel: 1-D FIR taps (``[1, 3, 3, 1]``), normalised to unit DC gain.
        pad: ``(p0, p1)`` padding on both axes, as :class:`~genface.nn.resample.Blur`'s.
        factor: the stride of the sampling that follows (2).
    """

    def __init__(self, kernel: Sequence[float] = (1, 3, 3, 1), pad: Sequence[int] = (1, 1), factor: int = 2):
        super().__init__()
        self.register_buffer("kernel", make_kernel(kernel), persistent=False)
        self.pad, self.factor = tuple(pad), factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, down=self.factor, pad=self.pad)

    def extra_repr(self) -> str:
        return f"pad={self.pad}, factor={self.factor}"
