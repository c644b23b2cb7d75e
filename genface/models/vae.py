"""Convolutional VAE: Kingma & Welling, "Auto-Encoding Variational Bayes", arXiv 1312.6114 (2013).

Encoder q(z|x) = N(mu, diag(sigma^2)) from stride-2 convolutions; decoder p(x|z) mirrors it
with transposed convolutions and a tanh output. The loss (in
:class:`genface.training.vae.VAEModule`) is reconstruction + beta · KL(q(z|x) || N(0, I)),
with the KL term in closed form (:func:`kl_divergence`), both summed per image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from genface.models.base import PretrainedMixin, build_config
from genface.nn.blocks import ConvBlock, UpConvBlock
from genface.nn.progressive import check_resolution
from genface.utils import seeded_randn


@dataclass
class VAEConfig:
    """VAE hyper-parameters."""

    resolution: int = 64  # image side in pixels: 32, 64 or 128
    z_dim: int = 128  # latent size (z)
    channels: int = 3  # image channels
    widths: list[int] | None = None
    # encoder channels after each stride-2 convolution (64 px → 32, 16, 8, 4 px); the decoder
    # mirrors them; len(widths) = log2(resolution) - 2 so the bottleneck is 4x4.
    # None = 32, 64, 128, 256, 256, ... (as many as the resolution needs).

    def __post_init__(self):
        check_resolution(self.resolution, 32, 128, model="VAE")


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form KL(N(mu, exp(logvar)) || N(0, I)) summed over latent dimensions: (N, z) → (N,).

    Kingma & Welling Appendix B: -1/2 · sum(1 + log sigma^2 - mu^2 - sigma^2). Always >= 0.
    """
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


class VAE(PretrainedMixin, nn.Module):
    """Convolutional VAE with ``encode``, ``decode``, ``sample``, ``reconstruct``, ``interpolate``.

    Args:
        config: a :class:`VAEConfig`, or None for the defaults.
        **overrides: fields of :class:`VAEConfig` to change.
    """

    config_class = VAEConfig

    def __init__(self, config: VAEConfig | None = None, **overrides):
        super().__init__()
        cfg = self.config = build_config(VAEConfig, config, **overrides)
        n = int(math.log2(cfg.resolution)) - 2
        if cfg.widths is None:
            cfg.widths = [min(32 * 2**i, 256) for i in range(n)]
        if len(cfg.widths) != n:
            raise ValueError(f"VAE at {cfg.resolution} px needs {n} widths (to reach 4x4), got {cfg.widths}")
        chans = [cfg.channels, *cfg.widths]
        self.encoder = nn.Sequential(*[ConvBlock(a, b, bias=False) for a, b in zip(chans[:-1], chans[1:])])
        flat = cfg.widths[-1] * 16
        self.to_stats = nn.Linear(flat, 2 * cfg.z_dim)  # → (mu, log sigma^2)
        self.from_z = nn.Linear(cfg.z_dim, flat)
        rev = cfg.widths[::-1]
        ups: list[nn.Module] = [UpConvBlock(a, b) for a, b in zip(rev[:-1], rev[1:])]
        ups.append(UpConvBlock(rev[-1], cfg.channels, batch_norm=False, activation="tanh", bias=True))
        self.decoder = nn.Sequential(*ups)

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (N, C, H, W) in [-1, 1] → (mu, logvar), each (N, z_dim)."""
        r = self.config.resolution
        if x.ndim != 4 or x.shape[1:] != (self.config.channels, r, r):
            raise ValueError(f"expected images (N, {self.config.channels}, {r}, {r}), got {tuple(x.shape)}")
        mu, logvar = self.to_stats(self.encoder(x).flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (N, z_dim) → images (N, C, H, W) in [-1, 1]."""
        h = self.from_z(z).view(z.shape[0], self.config.widths[-1], 4, 4)
        return self.decoder(h)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma · eps, eps ~ N(0, I) (the reparameterisation trick, §2.4)."""
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (reconstruction, mu, logvar) for a training step."""
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """Decode ``n`` draws from the prior N(0, I); ``seed`` fixes them."""
        return self._eval(lambda: self.decode(seeded_randn(n, self.z_dim, seed=seed, device=self._device())))

    generate = sample  # the notebook API shared by every generative model

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction: decode the posterior mean."""
        return self._eval(lambda: self.decode(self.encode(x)[0]))

    @torch.no_grad()
    def interpolate(self, a: torch.Tensor, b: torch.Tensor, steps: int = 8) -> torch.Tensor:
        """Decode ``steps`` points on the line between the posterior means of images ``a`` and ``b``.

        ``a`` and ``b`` are single images (C, H, W) or batches of one; returns (steps, C, H, W).
        """
        def run():
            za = self.encode(a.reshape(1, *a.shape[-3:]))[0]
            zb = self.encode(b.reshape(1, *b.shape[-3:]))[0]
            t = torch.linspace(0, 1, steps, device=za.device)[:, None]
            return self.decode((1 - t) * za + t * zb)
        return self._eval(run)

    def _eval(self, fn):
        was = self.training
        self.eval()
        try:
            return fn()
        finally:
            self.train(was)
