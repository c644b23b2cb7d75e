"""Minibatch standard deviation (Karras et al., ProGAN, arXiv 1710.10196, §3).

The discriminator sees, as extra feature maps, the standard deviation of its features
across a small group of samples, averaged over features and pixels. A generator that
collapses to a few modes yields a low value that the discriminator can detect.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MinibatchStdDev"]


class MinibatchStdDev(nn.Module):
    """Append ``num_channels`` minibatch-stddev feature maps (ProGAN §3; StyleGAN2 ``mbstd``).

    Per group of ``G`` samples: std over the group of each feature (``sqrt(var + eps)``),
    averaged over the ``C / num_channels`` features of each split and over all pixels, then
    broadcast to ``(G, num_channels, H, W)`` and concatenated to the input.

    Args:
        group_size: samples per group (4 in ProGAN/StyleGAN). If the batch size is not a
            multiple of it, the largest divisor of the batch size that is ``<= group_size`` is
            used (1 gives a zero std map); ``None`` = the whole batch is one group.
        num_channels: number of stddev maps (1 in the papers); must divide ``C``.
        eps: added to the variance before the square root.
    """

    def __init__(self, group_size: int | None = 4, num_channels: int = 1, eps: float = 1e-8):
        super().__init__()
        if group_size is not None and group_size < 1:
            raise ValueError(f"group_size must be >= 1 or None, got {group_size}")
        if num_channels < 1:
            raise ValueError(f"num_channels must be >= 1, got {num_channels}")
        self.group_size, self.num_channels, self.eps = group_size, num_channels, eps

    def effective_group_size(self, batch_size: int) -> int:
        """The group size used for ``batch_size`` samples (largest divisor <= ``group_size``)."""
        g = batch_size if self.group_size is None else min(self.group_size, batch_size)
        while batch_size % g:
            g -= 1
        return g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"MinibatchStdDev expects (N, C, H, W), got {tuple(x.shape)}")
        n, c, h, w = x.shape
        f = self.num_channels
        if c % f:
            raise ValueError(f"num_channels={f} must divide the {c} input channels")
        g = self.effective_group_size(n)
        y = x.reshape(g, n // g, f, c // f, h, w)  # (G, M, F, c, H, W); sample i·M + m in group m
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + self.eps).sqrt()  # (M, F, c, H, W)
        y = y.mean(dim=(2, 3, 4))  # (M, F)
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # (N, F, H, W)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
