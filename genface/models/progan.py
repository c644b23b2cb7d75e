"""ProGAN: Progressive Growing of GANs (Karras, Aila, Laine, Lehtinen, ICLR 2018, arXiv 1710.10196).

Generator and discriminator of Table 2 of the paper, growing from 4x4 to ``resolution``
(§2, Fig. 2), with equalised learning rate (§4.1), pixelwise feature normalisation in G
(§4.2), nearest-neighbour upsampling, average-pool downsampling and the minibatch
standard-deviation layer at the end of D (§3). Stage ``k`` works at ``4 · 2**k`` pixels;
``alpha`` is the fade-in weight of the newest stage. The training schedule (when ``stage``
and ``alpha`` change) belongs to the training module, not here.

``resample="bilinear"`` switches both networks to StyleGAN's blurred resampling (StyleGAN
Table 1, config B).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from genface.models.api import GANWrapperAPI, GeneratorAPI
from genface.models.base import GANPair, PretrainedMixin, build_config
from genface.nn.equalized import EqualConv2d, EqualLinear
from genface.nn.progressive import (
    ProgressiveDiscriminator,
    check_resolution,
    check_stage,
    fade_in_synthesis,
    num_stages,
    progan_channels,
    stage_resolution,
)
from genface.nn.resample import Upsample
from genface.nn.style import NOISE_MODES, pixel_norm

__all__ = ["ProGANConfig", "ProGANGenerator", "ProGANDiscriminator", "ProGAN"]

SQRT2 = math.sqrt(2)


@dataclass
class ProGANConfig:
    """ProGAN hyper-parameters; defaults are the paper's CelebA-HQ 1024x1024 networks (Table 2)."""

    resolution: int = 1024  # final image size, a power of two in 8..1024
    z_dim: int = 512  # latent size (512 in the paper)
    img_channels: int = 3  # image channels
    fmap_base: int = 8192  # nf(res) = min(fmap_base / 2**(log2(res) - 1), fmap_max): 512 .. 16 at 1024
    fmap_max: int = 512  # cap on feature maps per layer
    resample: str = "nearest"  # "nearest" (paper: nearest up, avg-pool down) or "bilinear" (FIR [1,3,3,1], StyleGAN config B)
    pixel_norm: bool = True  # pixelwise feature normalisation after every G conv (§4.2); False = none
    normalize_latent: bool = True  # pixel-normalise z onto the hypersphere first (§4.2); False = feed z as is
    mbstd_group_size: int = 4  # samples per minibatch-stddev group (§3)
    mbstd_num_channels: int = 1  # minibatch-stddev maps; 0 = no minibatch-stddev layer

    def __post_init__(self):
        check_resolution(self.resolution, model="ProGAN")

    def channels(self) -> dict[int, int]:
        """Feature maps per resolution ``{4: ..., 8: ..., ..., resolution: ...}``."""
        return {stage_resolution(k): progan_channels(stage_resolution(k), self.fmap_base, self.fmap_max)
                for k in range(num_stages(self.resolution))}


class _GBlock(nn.Module):
    """One resolution of ProGAN's G: 2x upsample, conv3x3, LReLU, PN, conv3x3, LReLU, PN."""

    def __init__(self, in_channels: int, out_channels: int, resample: str, use_pn: bool):
        super().__init__()
        self.up = Upsample(resample)
        self.conv0 = EqualConv2d(in_channels, out_channels, 3, gain=SQRT2)
        self.conv1 = EqualConv2d(out_channels, out_channels, 3, gain=SQRT2)
        self.act = nn.LeakyReLU(0.2)
        self.use_pn = use_pn

    def _pn(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x) if self.use_pn else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._pn(self.act(self.conv0(self.up(x))))
        return self._pn(self.act(self.conv1(x)))


class _GInput(nn.Module):
    """4x4 block: latent -> dense to 4x4xC (+ per-channel bias), LReLU, PN, conv3x3, LReLU, PN."""

    def __init__(self, z_dim: int, channels: int, use_pn: bool):
        super().__init__()
        self.channels = channels
        self.dense = EqualLinear(z_dim, channels * 16, bias=False, gain=SQRT2 / 4)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.conv = EqualConv2d(channels, channels, 3, gain=SQRT2)
        self.act = nn.LeakyReLU(0.2)
        self.use_pn = use_pn

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.dense(z).view(-1, self.channels, 4, 4) + self.bias.view(1, -1, 1, 1)
        x = self.act(x)
        x = pixel_norm(x) if self.use_pn else x
        x = self.act(self.conv(x))
        return pixel_norm(x) if self.use_pn else x


class ProGANGenerator(PretrainedMixin, GeneratorAPI, nn.Module):
    """ProGAN generator (Table 2, left), progressive with fade-in.

    ``blocks[0]`` is the 4x4 input block, ``blocks[k]`` doubles the resolution to stage
    ``k``; ``to_rgb[k]`` (1x1 conv, linear) reads stage ``k`` features. During a fade-in
    (``alpha < 1``) the output is ``lerp(up(to_rgb[k-1](x_{k-1})), to_rgb[k](x_k), alpha)``,
    so at ``alpha = 0`` it is exactly stage ``k-1``'s image upsampled.

    The notebook API treats ProGAN as a one-row "ws": ``mapping(z)`` returns the normalised
    latent ``(N, 1, z_dim)``; ``truncation_psi`` scales it towards the origin (the mean of
    ``z``) *after* normalisation — an analogue of the StyleGAN truncation trick that the
    ProGAN paper does not use. There are no noise inputs and no style mixing.

    Args:
        config: a :class:`ProGANConfig` (or mapping); ``None`` = defaults.
        **overrides: field overrides.
    """

    config_class = ProGANConfig

    def __init__(self, config: ProGANConfig | None = None, **overrides):
        super().__init__()
        self.config = cfg = build_config(ProGANConfig, config, **overrides)
        self.z_dim, self.num_ws, self.img_channels = cfg.z_dim, 1, cfg.img_channels
        self.resolution, self.num_stages = cfg.resolution, num_stages(cfg.resolution)
        ch = [cfg.channels()[stage_resolution(k)] for k in range(self.num_stages)]
        self.blocks = nn.ModuleList(
            [_GInput(cfg.z_dim, ch[0], cfg.pixel_norm)]
            + [_GBlock(ch[k - 1], ch[k], cfg.resample, cfg.pixel_norm) for k in range(1, self.num_stages)]
        )
        self.to_rgb = nn.ModuleList(EqualConv2d(c, cfg.img_channels, 1, gain=1.0) for c in ch)
        self.upsample = Upsample(cfg.resample)

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_w_avg: bool = False) -> torch.Tensor:
        """``z`` ``(N, z_dim)`` -> ``ws`` ``(N, 1, z_dim)``: the (pixel-normalised) latent times ``psi``.

        ``truncation_cutoff`` and ``update_w_avg`` exist for API parity and are ignored.
        """
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"ProGAN expected z of shape (N, {self.z_dim}), got {tuple(z.shape)}")
        w = pixel_norm(z) if self.config.normalize_latent else z
        return (w * truncation_psi)[:, None, :]

    def synthesis(self, ws: torch.Tensor, stage: int | None = None, alpha: float = 1.0,
                  noise_mode: str = "random") -> torch.Tensor:
        """Images ``(N, C, R, R)`` at ``R = 4 · 2**stage`` from ``ws`` ``(N, 1, z_dim)``.

        Args:
            ws: latents from :meth:`mapping`.
            stage: progressive stage (0 = 4x4); ``None`` = the final resolution.
            alpha: fade-in weight of the newest stage (1 = fully faded in).
            noise_mode: accepted for API parity; ProGAN has no noise inputs.
        """
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"unknown noise_mode {noise_mode!r}; valid: {list(NOISE_MODES)}")
        if ws.ndim != 3 or ws.shape[1:] != (1, self.z_dim):
            raise ValueError(f"ProGAN expected ws of shape (N, 1, {self.z_dim}), got {tuple(ws.shape)}")
        stage = check_stage(stage, self.num_stages)
        def block(k, x):
            return self.blocks[0](ws[:, 0]) if k == 0 else self.blocks[k](x)

        return fade_in_synthesis(block, self.to_rgb, self.upsample, stage, alpha)

    def forward(self, z: torch.Tensor, stage: int | None = None, alpha: float = 1.0,
                truncation_psi: float = 1.0) -> torch.Tensor:
        """``G(z, stage, alpha)``: images ``(N, C, R, R)``, ``R = 4 · 2**stage`` (default: final)."""
        return self.synthesis(self.mapping(z, truncation_psi), stage=stage, alpha=alpha)


class ProGANDiscriminator(PretrainedMixin, ProgressiveDiscriminator):
    """ProGAN discriminator (Table 2, right): ``D(x, stage, alpha)`` -> ``(N, 1)`` raw scores.

    See :class:`genface.nn.progressive.ProgressiveDiscriminator` for the layout
    (``from_rgb[k]``, ``blocks[k]``, ``epilogue`` with minibatch stddev).

    Args:
        config: a :class:`ProGANConfig` (or mapping); ``None`` = defaults.
        **overrides: field overrides.
    """

    config_class = ProGANConfig

    def __init__(self, config: ProGANConfig | None = None, **overrides):
        # config_class: StyleGANDiscriminator is this class with StyleGAN's config
        cfg = build_config(self.config_class, config, **overrides)
        super().__init__(cfg.resolution, cfg.channels(), cfg.img_channels, cfg.resample,
                         cfg.mbstd_group_size, cfg.mbstd_num_channels)
        self.config = cfg


class ProGAN(GANWrapperAPI, GANPair):
    """ProGAN generator + discriminator pair (``.generator``, ``.discriminator``, ``.z_dim``).

    Calling it runs the generator; ``generate``/``interpolate``/``mapping``/``synthesis``
    delegate to it.

    Args:
        config: a :class:`ProGANConfig` (or mapping); ``None`` = defaults.
        **overrides: field overrides.
    """

    config_class = ProGANConfig
    generator_class = ProGANGenerator
    discriminator_class = ProGANDiscriminator
