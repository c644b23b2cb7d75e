"""DCGAN: Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", arXiv 1511.06434 (2015).

Matches pytorch/examples ``dcgan/main.py``: with ``z_dim=100``, ``ngf=ndf=64`` at 64x64 RGB
the generator has 3,576,704 and the discriminator 2,765,568 parameters (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from genface.models.base import GANPair
from genface.nn.blocks import ConvBlock, UpConvBlock, dcgan_init_
from genface.nn.progressive import check_resolution
from genface.utils import seeded_randn


@dataclass
class DCGANConfig:
    """DCGAN hyper-parameters (the paper's defaults)."""

    resolution: int = 64  # output side in pixels: 32, 64 or 128 (one stride-2 layer per doubling)
    z_dim: int = 100  # latent size (the paper's z, "nz" in pytorch/examples)
    ngf: int = 64  # generator width: channels of its last hidden layer
    ndf: int = 64  # discriminator width: channels of its first layer
    channels: int = 3  # image channels (nc)

    def __post_init__(self):
        check_resolution(self.resolution, 32, 128, model="DCGAN")


class DCGANGenerator(nn.Module):
    """G: z → ConvT 4x4 → (4, 4, 2^(L-1)·ngf) → stride-2 ConvT up to the resolution, BN + ReLU, tanh out."""

    def __init__(self, config: DCGANConfig):
        super().__init__()
        n_up = int(math.log2(config.resolution)) - 2  # 64 px: 4x4 → 8 → 16 → 32 → 64
        ch = config.ngf * 2 ** (n_up - 1)
        layers: list[nn.Module] = [UpConvBlock(config.z_dim, ch, 4, 1, 0, activation="relu")]
        for _ in range(n_up - 1):
            layers.append(UpConvBlock(ch, ch // 2, activation="relu"))
            ch //= 2
        layers.append(UpConvBlock(ch, config.channels, batch_norm=False, activation="tanh"))
        self.net = nn.Sequential(*layers)
        self.z_dim = config.z_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: (N, z_dim) → images (N, C, H, W) in [-1, 1]."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"expected z of shape (N, {self.z_dim}), got {tuple(z.shape)}")
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """D: stride-2 Conv + LeakyReLU(0.2), BatchNorm except on the first layer, one logit per image."""

    def __init__(self, config: DCGANConfig):
        super().__init__()
        n_down = int(math.log2(config.resolution)) - 2
        ch = config.ndf
        layers: list[nn.Module] = [ConvBlock(config.channels, ch, batch_norm=False)]
        for _ in range(n_down - 1):
            layers.append(ConvBlock(ch, ch * 2))
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, 4, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)
        self.resolution = config.resolution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) → logits (N,)."""
        if x.ndim != 4 or x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            raise ValueError(f"expected images (N, C, {self.resolution}, {self.resolution}), got {tuple(x.shape)}")
        return self.net(x).flatten()


class DCGAN(GANPair):
    """The DCGAN pair: ``generator`` and ``discriminator``, initialised as in the paper (N(0, 0.02)).

    A :class:`~genface.models.base.GANPair` like ProGAN and the StyleGANs: both networks are
    built from one config, calling the pair runs the generator.

    Args:
        config: a :class:`DCGANConfig`, or None for the defaults.
        **overrides: fields of :class:`DCGANConfig` to change.

    Example::

        net = DCGAN(resolution=32, ngf=32, ndf=32)
        images = net.generate(16, seed=0)   # (16, 3, 32, 32) in [-1, 1]
    """

    config_class = DCGANConfig
    generator_class = DCGANGenerator
    discriminator_class = DCGANDiscriminator

    def __init__(self, config: DCGANConfig | None = None, **overrides):
        super().__init__(config, **overrides)
        dcgan_init_(self)

    @torch.no_grad()
    def generate(self, n: int, seed: int | None = None) -> torch.Tensor:
        """Draw ``n`` images (N, C, H, W) in [-1, 1] with the generator in eval mode; ``seed`` fixes z."""
        device = next(self.parameters()).device
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(seeded_randn(n, self.z_dim, seed=seed, device=device))
        finally:
            self.generator.train(was_training)
