"""Resampling: FIR up/down-sampling (``upfirdn2d``) in plain PyTorch, and ProGAN's resamplers.

* ProGAN (arXiv 1710.10196, §2 and App. A): nearest-neighbour upsampling in G and 2x2
  average pooling in D: :class:`Upsample` / :class:`Downsample` with ``mode="nearest"``.
* StyleGAN (arXiv 1812.04948, §2 and config B of Table 1): "bilinear" resampling, realised
  as nearest-neighbour up / average-pool down followed / preceded by a ``[1, 2, 1]`` binomial
  blur (Zhang 2019). Nearest-up followed by ``[1, 2, 1]`` is exactly FIR upsampling with
  ``[1, 3, 3, 1]``, so ``mode="bilinear"`` uses :func:`upfirdn2d` with that kernel.
* StyleGAN2 (arXiv 1912.04958) uses the same ``[1, 3, 3, 1]`` FIR filter around its strided
  / transposed convolutions (:class:`Blur`).

:func:`upfirdn2d` follows the semantics of NVlabs' ``upfirdn2d`` op: zero-insertion
upsampling by ``up``, padding (negative = crop), FIR filtering with ``kernel``, and keeping
every ``down``-th sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "make_kernel", "upfirdn2d", "Blur", "FIRUpsample", "FIRDownsample", "Upsample",
    "Downsample", "RESAMPLE_MODES",
]

#: Resampling modes of :class:`Upsample` / :class:`Downsample`.
RESAMPLE_MODES = ("nearest", "bilinear")


def make_kernel(k: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """A normalised 2-D FIR kernel: the outer product of a 1-D kernel with itself (sum 1).

    Args:
        k: 1-D taps (e.g. ``[1, 3, 3, 1]``) or an already 2-D kernel.
    """
    k = torch.as_tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    if k.ndim != 2:
        raise ValueError(f"make_kernel expects a 1-D or 2-D kernel, got shape {tuple(k.shape)}")
    return k / k.sum()


def _pad4(pad: int | Sequence[int]) -> tuple[int, int, int, int]:
    if isinstance(pad, int):
        return (pad, pad, pad, pad)
    pad = tuple(int(p) for p in pad)
    if len(pad) == 2:
        return (pad[0], pad[1], pad[0], pad[1])
    if len(pad) == 4:
        return pad  # type: ignore[return-value]
    raise ValueError(f"pad must be an int, (p0, p1) or (x0, x1, y0, y1); got {pad}")


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: int | Sequence[int] = 0) -> torch.Tensor:
    """Upsample by zero insertion, pad, filter with a FIR ``kernel``, downsample.

    Args:
        x: ``(N, C, H, W)`` input.
        kernel: ``(kh, kw)`` FIR filter (not flipped: true convolution, as NVlabs does).
        up: integer upsampling factor (zeros inserted between samples; scale ``kernel`` by
            ``up**2`` to keep the DC gain).
        down: integer downsampling factor (keep every ``down``-th sample).
        pad: padding after upsampling: an int, ``(p0, p1)`` for both axes, or
            ``(x0, x1, y0, y1)``; negative values crop.

    Returns:
        ``(N, C, (H*up + y0 + y1 - kh) // down + 1, (W*up + x0 + x1 - kw) // down + 1)``.
    """
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects (N, C, H, W), got {tuple(x.shape)}")
    if kernel.ndim != 2:
        raise ValueError(f"upfirdn2d expects a 2-D kernel, got {tuple(kernel.shape)}")
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x0, x1, y0, y1 = _pad4(pad)
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0): x.shape[2] - max(-y1, 0), max(-x0, 0): x.shape[3] - max(-x1, 0)]
    weight = kernel.flip([0, 1]).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(x, weight, stride=down, groups=c)


class Blur(nn.Module):
    """FIR low-pass filter (Zhang, "Making convolutional networks shift-invariant again", 2019).

    Used by StyleGAN2 around strided / transposed convolutions.

    Args:
        kernel: 1-D taps, default ``[1, 3, 3, 1]`` (normalised to unit DC gain).
        pad: ``(p0, p1)`` padding on both axes.
        upsample_factor: the kernel is multiplied by ``factor**2`` when the blur follows a
            zero-inserting (transposed-conv) upsampling, to keep the DC gain; 1 = none.
    """

    def __init__(self, kernel: Sequence[float] = (1, 3, 3, 1), pad: Sequence[int] = (1, 1),
                 upsample_factor: int = 1):
        super().__init__()
        k = make_kernel(kernel) * (upsample_factor ** 2)
        self.register_buffer("kernel", k, persistent=False)
        self.pad = tuple(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class FIRUpsample(nn.Module):
    """2x (or ``factor``x) FIR upsampling that keeps the image centred: ``H -> factor·H``.

    Args:
        kernel: 1-D taps (default ``[1, 3, 3, 1]``: bilinear at half-pixel offsets).
        factor: integer upsampling factor.
    """

    def __init__(self, kernel: Sequence[float] = (1, 3, 3, 1), factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * factor**2, persistent=False)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class FIRDownsample(nn.Module):
    """FIR low-pass then keep every ``factor``-th sample: ``H -> H / factor``.

    Args:
        kernel: 1-D taps (default ``[1, 3, 3, 1]`` = ``[1, 2, 1]`` blur + 2x2 average pool).
        factor: integer downsampling factor.
    """

    def __init__(self, kernel: Sequence[float] = (1, 3, 3, 1), factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel), persistent=False)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, down=self.factor, pad=self.pad)


def _check_mode(mode: str) -> str:
    if mode not in RESAMPLE_MODES:
        raise ValueError(f"unknown resample mode {mode!r}; valid: {list(RESAMPLE_MODES)}")
    return mode


class Upsample(nn.Module):
    """2x upsampling: ``"nearest"`` (ProGAN) or ``"bilinear"`` (StyleGAN: nearest + [1,2,1] blur).

    Args:
        mode: ``"nearest"`` or ``"bilinear"`` (FIR ``[1, 3, 3, 1]``).
    """

    def __init__(self, mode: str = "nearest"):
        super().__init__()
        self.mode = _check_mode(mode)
        self.fir = FIRUpsample((1, 3, 3, 1), 2) if mode == "bilinear" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fir is None:
            return F.interpolate(x, scale_factor=2, mode="nearest")
        return self.fir(x)

    def extra_repr(self) -> str:
        return f"mode={self.mode}"


class Downsample(nn.Module):
    """2x downsampling: ``"nearest"`` = 2x2 average pool (ProGAN, the box filter paired with
    nearest upsampling) or ``"bilinear"`` ([1, 2, 1] blur + average pool = FIR ``[1, 3, 3, 1]``).

    Args:
        mode: ``"nearest"`` or ``"bilinear"``.
    """

    def __init__(self, mode: str = "nearest"):
        super().__init__()
        self.mode = _check_mode(mode)
        self.fir = FIRDownsample((1, 3, 3, 1), 2) if mode == "bilinear" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fir is None:
            return F.avg_pool2d(x, 2)
        return self.fir(x)

    def extra_repr(self) -> str:
        return f"mode={self.mode}"
