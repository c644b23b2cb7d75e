"""A toy GAN (two small MLPs) that exists only to show the model contract: its one row in
``tests/conftest.py``'s TINY table runs the whole of ``tests/models/test_model_contract.py`` for it.

It borrows ``configs/model/dcgan.yaml`` (same field names: ``resolution``, ``z_dim``, ``ngf``,
``ndf``, ``channels``), as a new model can until it has a YAML of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genface.models.base import GANPair
from genface.nn.progressive import check_resolution
from genface.utils import seeded_randn


@dataclass
class ToyGANConfig:
    """Toy MLP GAN hyper-parameters."""

    resolution: int = 32  # image side in pixels: a power of two in 8..64
    z_dim: int = 16  # latent size
    ngf: int = 32  # generator hidden width
    ndf: int = 32  # discriminator hidden width
    channels: int = 3  # image channels

    def __post_init__(self):
        check_resolution(self.resolution, 8, 64, model="ToyGAN")


class ToyGenerator(nn.Module):
    """z -> Linear -> ReLU -> Linear -> tanh -> (N, C, R, R)."""

    def __init__(self, config: ToyGANConfig):
        super().__init__()
        self.z_dim, self.shape = config.z_dim, (config.channels, config.resolution, config.resolution)
        self.net = nn.Sequential(nn.Linear(config.z_dim, config.ngf), nn.ReLU(),
                                 nn.Linear(config.ngf, config.channels * config.resolution**2), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"expected z of shape (N, {self.z_dim}), got {tuple(z.shape)}")
        return self.net(z).view(-1, *self.shape)


class ToyDiscriminator(nn.Module):
    """(N, C, R, R) -> flatten -> Linear -> LeakyReLU -> Linear -> (N,) logits."""

    def __init__(self, config: ToyGANConfig):
        super().__init__()
        self.shape = (config.channels, config.resolution, config.resolution)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(config.channels * config.resolution**2, config.ndf),
                                 nn.LeakyReLU(0.2), nn.Linear(config.ndf, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"expected images (N, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}")
        return self.net(x).flatten()


class ToyGAN(GANPair):
    """The toy pair (``generator``, ``discriminator``, ``z_dim``, ``generate``)."""

    config_class = ToyGANConfig
    generator_class = ToyGenerator
    discriminator_class = ToyDiscriminator

    @torch.no_grad()
    def generate(self, n: int, seed: int | None = None) -> torch.Tensor:
        """``n`` images in [-1, 1]; ``seed`` fixes z."""
        return self.generator(seeded_randn(n, self.z_dim, seed=seed, device=next(self.parameters()).device))
