"""StyleGAN: A Style-Based Generator Architecture for GANs (Karras, Laine, Aila, CVPR 2019,
arXiv 1812.04948).

The generator of Fig. 1b: a mapping network ``f: Z -> W`` (8 FC layers, LR multiplier
0.01), a synthesis network ``g`` that starts from a learned constant 4x4 input, adds
per-pixel noise scaled by ``B`` and applies ``AdaIN(x, A(w))`` (Eq. 1) after every
convolution, with bilinear (blurred) resampling; the truncation trick (§3.1, App. B) with
``truncation_psi`` and a layer ``truncation_cutoff``; style mixing at a crossover layer
(§3.1); progressive growing (stage, alpha) as in ProGAN. The discriminator is ProGAN's with
bilinear resampling.

Ablation (Table 1). Each config is a small delta of :class:`StyleGANConfig` switching real
components (``configs/model`` presets should mirror these):

====  ==========================  ==================================================================
cfg   Table 1 row                 fields
====  ==========================  ==================================================================
A     ProGAN baseline             mapping_layers=0, use_styles=False, const_input=False, use_noise=False, resample="nearest"
B     + tuning (incl. bilinear)   A with resample="bilinear"
C     + add mapping and styles    B with mapping_layers=8, use_styles=True
D     + remove traditional input  C with const_input=True
E     + add noise inputs          D with use_noise=True
F     + mixing regularisation     E (the defaults), trained with ``objective.style_mixing_prob=0.9``
====  ==========================  ==================================================================

Config A built this way has exactly ProGAN's generator and discriminator (same parameter
shapes, in the same order; ``tests/models/test_stylegan.py`` checks that copying the weights gives
identical outputs). The training-side parts of B ("tuning": hyper-parameters, R1 loss)
belong to the training module, and so does F's mixing regularisation: it is a training knob
(:class:`genface.training.objective.GANObjective`), listed per config in
:data:`ABLATION_STYLE_MIXING`. For A, the "w" fed to the synthesis is the pixel-normalised
``z`` and the first layer is ProGAN's dense 4x4 input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from genface.models.api import GANWrapperAPI, GeneratorAPI
from genface.models.base import GANPair, PretrainedMixin, build_config
from genface.models.progan import ProGANDiscriminator
from genface.nn.equalized import EqualConv2d, EqualLinear
from genface.nn.progressive import (
    check_resolution,
    check_stage,
    fade_in_synthesis,
    num_stages,
    progan_channels,
    stage_resolution,
)
from genface.nn.resample import RESAMPLE_MODES, Upsample
from genface.nn.style import AdaIN, ConstantInput, MappingNetwork, NoiseInjection, pixel_norm

__all__ = ["StyleGANConfig", "StyleGANSynthesis", "StyleGANGenerator", "StyleGANDiscriminator",
           "StyleGAN", "ABLATION_CONFIGS"]

SQRT2 = math.sqrt(2)


@dataclass
class StyleGANConfig:
    """StyleGAN hyper-parameters; defaults are config F at 1024x1024 (StyleGAN Table 1, App. C)."""

    resolution: int = 1024  # final image size, a power of two in 8..1024
    z_dim: int = 512  # latent size of z
    w_dim: int = 512  # size of w (must equal z_dim when mapping_layers == 0)
    img_channels: int = 3  # image channels
    fmap_base: int = 8192  # feature maps nf(res) = min(fmap_base / 2**(log2(res) - 1), fmap_max), as ProGAN
    fmap_max: int = 512  # cap on feature maps per layer
    mapping_layers: int = 8  # FC layers of the mapping network f; 0 = none (w = normalised z, configs A/B)
    mapping_lr_mul: float = 0.01  # learning-rate multiplier of the mapping network (App. C)
    w_avg_beta: float | None = 0.995  # decay of the tracked w_avg used by truncation; None = do not track
    use_styles: bool = True  # AdaIN(x, A(w)) after every conv; False = PixelNorm instead (ProGAN)
    const_input: bool = True  # learned constant 4x4 input; False = "traditional input": w -> dense 4x4 (ProGAN)
    use_noise: bool = True  # per-pixel noise inputs scaled per feature (B); False = none
    resample: str = "bilinear"  # "bilinear" (FIR [1,3,3,1]) or "nearest" (nearest up / avg-pool down, ProGAN)
    mbstd_group_size: int = 4  # discriminator minibatch-stddev group size
    mbstd_num_channels: int = 1  # minibatch-stddev maps; 0 = none

    def __post_init__(self):
        check_resolution(self.resolution, model="StyleGAN")
        if self.resample not in RESAMPLE_MODES:
            raise ValueError(f"unknown resample {self.resample!r}; valid: {list(RESAMPLE_MODES)}")
        if self.mapping_layers == 0 and self.z_dim != self.w_dim:
            raise ValueError("mapping_layers=0 feeds z as w: z_dim must equal w_dim")

    def channels(self) -> dict[int, int]:
        """Feature maps per resolution ``{4: ..., ..., resolution: ...}``."""
        return {stage_resolution(k): progan_channels(stage_resolution(k), self.fmap_base, self.fmap_max)
                for k in range(num_stages(self.resolution))}


def _ablation_configs() -> dict[str, dict]:
    """Table 1's rows, each the previous one plus its change (as configs/experiment/stylegan_ablation)."""
    rows = {"A": dict(mapping_layers=0, use_styles=False, const_input=False, use_noise=False, resample="nearest")}
    changes = {"B": dict(resample="bilinear"), "C": dict(mapping_layers=8, use_styles=True),
               "D": dict(const_input=True), "E": dict(use_noise=True),
               "F": {}}  # F adds mixing regularisation: a training knob (ABLATION_STYLE_MIXING)
    for name, change in changes.items():
        rows[name] = {**rows[chr(ord(name) - 1)], **change}
    return rows


#: StyleGAN Table 1 ablation configs as overrides of :class:`StyleGANConfig` (see module docstring).
ABLATION_CONFIGS: dict[str, dict] = _ablation_configs()


#: StyleGAN Table 1: the style-mixing probability each config trains with (objective.style_mixing_prob).
ABLATION_STYLE_MIXING: dict[str, float] = {"A": 0.0, "B": 0.0, "C": 0.0, "D": 0.0, "E": 0.0, "F": 0.9}


class StyleGANLayer(nn.Module):
    """One synthesis layer of Fig. 1b: input op, then noise (B), bias, LReLU, AdaIN (A) or PixelNorm.

    The input op is the learned constant (``kind="const"``), the traditional dense 4x4
    input fed with ``w`` (``"dense"``), a 3x3 conv (``"conv"``) or 2x upsampling + 3x3 conv
    (``"upconv"``). The epilogue order follows the official code: noise, bias, activation,
    normalisation/style.

    Args:
        in_channels: input channels (ignored for ``const``; ``w_dim`` for ``dense``).
        out_channels: output channels.
        w_dim: dimension of ``w``.
        resolution: output resolution (for the const-noise buffer).
        kind: ``"const"``, ``"dense"``, ``"conv"`` or ``"upconv"``.
        use_noise: add a noise input (False = none).
        use_styles: AdaIN with ``A(w)`` (False = PixelNorm).
        resample: upsampling mode for ``upconv``.
    """

    KINDS = ("const", "dense", "conv", "upconv")

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kind: str,
                 use_noise: bool, use_styles: bool, resample: str = "bilinear"):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"unknown layer kind {kind!r}; valid: {list(self.KINDS)}")
        self.kind, self.out_channels = kind, out_channels
        if kind == "const":
            self.const = ConstantInput(out_channels, 4)
        elif kind == "dense":
            self.dense = EqualLinear(w_dim, out_channels * 16, bias=False, gain=SQRT2 / 4)
        else:
            self.up = Upsample(resample) if kind == "upconv" else None
            self.conv = EqualConv2d(in_channels, out_channels, 3, bias=False, gain=SQRT2)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise = NoiseInjection(out_channels, resolution) if use_noise else None
        self.adain = AdaIN(out_channels, w_dim) if use_styles else None
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor | None, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if self.kind == "const":
            x = self.const(w.shape[0])
        elif self.kind == "dense":
            x = self.dense(w).view(-1, self.out_channels, 4, 4)
        else:
            x = self.conv(self.up(x) if self.up is not None else x)
        if self.noise is not None:
            x = self.noise(x, noise_mode=noise_mode)
        x = self.act(x + self.bias.view(1, -1, 1, 1))
        return self.adain(x, w) if self.adain is not None else pixel_norm(x)


class StyleGANSynthesis(nn.Module):
    """The synthesis network ``g`` of StyleGAN Fig. 1b, with ProGAN-style fade-in.

    ``blocks[k]`` holds the two layers of stage ``k`` (``layers[0]`` is the const / dense
    input at 4x4, the upsampling conv above); layer ``i`` reads ``ws[:, i]``, so
    ``num_ws = 2 · num_stages``. ``to_rgb[k]`` is a 1x1 conv.

    Args:
        config: the generator's :class:`StyleGANConfig`.
    """

    def __init__(self, config: StyleGANConfig):
        super().__init__()
        cfg = config
        self.resolution, self.num_stages = cfg.resolution, num_stages(cfg.resolution)
        self.w_dim, self.img_channels = cfg.w_dim, cfg.img_channels
        self.num_ws = 2 * self.num_stages
        ch = [cfg.channels()[stage_resolution(k)] for k in range(self.num_stages)]
        blocks = []
        for k in range(self.num_stages):
            res = stage_resolution(k)
            first = ("const" if cfg.const_input else "dense") if k == 0 else "upconv"
            in_ch = ch[k] if k == 0 else ch[k - 1]
            blocks.append(nn.ModuleList([
                StyleGANLayer(in_ch, ch[k], cfg.w_dim, res, first, cfg.use_noise, cfg.use_styles, cfg.resample),
                StyleGANLayer(ch[k], ch[k], cfg.w_dim, res, "conv", cfg.use_noise, cfg.use_styles, cfg.resample),
            ]))
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = nn.ModuleList(EqualConv2d(c, cfg.img_channels, 1, gain=1.0) for c in ch)
        self.upsample = Upsample(cfg.resample)

    def num_active_ws(self, stage: int | None = None) -> int:
        """ws rows used at ``stage`` (``None`` = all)."""
        return 2 * (check_stage(stage, self.num_stages) + 1)

    def _block(self, k: int, x: torch.Tensor | None, ws: torch.Tensor, noise_mode: str) -> torch.Tensor:
        for j, layer in enumerate(self.blocks[k]):
            x = layer(x, ws[:, 2 * k + j], noise_mode)
        return x

    def forward(self, ws: torch.Tensor, stage: int | None = None, alpha: float = 1.0,
                noise_mode: str = "random") -> torch.Tensor:
        """Images ``(N, C, R, R)``, ``R = 4 · 2**stage``, from ``ws`` ``(N, num_ws, w_dim)``.

        Args:
            ws: one ``w`` per layer (rows beyond the stage's layers are ignored).
            stage: progressive stage (0 = 4x4); ``None`` = the final resolution.
            alpha: fade-in weight of the newest stage (1 = fully faded in).
            noise_mode: ``"random"``, ``"const"`` or ``"none"``.
        """
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"synthesis expected ws of shape (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        stage = check_stage(stage, self.num_stages)
        return fade_in_synthesis(lambda k, x: self._block(k, x, ws, noise_mode), self.to_rgb, self.upsample,
                                 stage, alpha)


class StyleGANGenerator(PretrainedMixin, GeneratorAPI, nn.Module):
    """StyleGAN generator ``G = g ∘ f`` (Fig. 1b): ``.mapping`` (:class:`MappingNetwork`) and
    ``.synthesis`` (:class:`StyleGANSynthesis`).

    ``G(z, stage, alpha)`` maps ``z`` to ``ws`` (broadcast, optionally truncated, style-mixed
    with the given ``mixing_prob``) and synthesises. It behaves the same in train and eval mode:
    the training module passes the mixing probability and ``update_w_avg`` explicitly.

    Args:
        config: a :class:`StyleGANConfig` (or mapping); ``None`` = defaults (config F, 1024 px).
        **overrides: field overrides.
    """

    config_class = StyleGANConfig

    def __init__(self, config: StyleGANConfig | None = None, **overrides):
        super().__init__()
        self.config = cfg = build_config(StyleGANConfig, config, **overrides)
        self.z_dim, self.w_dim, self.img_channels = cfg.z_dim, cfg.w_dim, cfg.img_channels
        self.resolution = cfg.resolution
        self.synthesis = StyleGANSynthesis(cfg)
        self.num_ws, self.num_stages = self.synthesis.num_ws, self.synthesis.num_stages
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.mapping_layers, lr_mul=cfg.mapping_lr_mul,
                                      normalize_z=True, w_avg_beta=cfg.w_avg_beta, num_ws=self.num_ws)

    def forward(self, z: torch.Tensor, stage: int | None = None, alpha: float = 1.0,
                truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                noise_mode: str = "random", mixing_prob: float = 0.0, update_w_avg: bool = False
                ) -> torch.Tensor:
        """``G(z, stage, alpha)`` -> images ``(N, C, R, R)``.

        Args:
            z: ``(N, z_dim)`` latents.
            stage: progressive stage (0 = 4x4); ``None`` = the final resolution.
            alpha: fade-in weight of the newest stage.
            truncation_psi: truncation ``psi`` (1.0 = none).
            truncation_cutoff: truncate only the first ws rows; ``None`` = all.
            noise_mode: ``"random"``, ``"const"`` or ``"none"``.
            mixing_prob: style-mixing probability for this batch (§3.1; the training module passes
                ``objective.style_mixing_prob`` in training passes); 0 = no mixing.
            update_w_avg: update the mapping's ``w_avg`` with this batch (NVlabs ``update_emas``;
                the training module sets it in training passes).
        """
        ws = self.mapping(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_w_avg=update_w_avg)
        ws = self.mixing_regularization(z, ws, mixing_prob, self.synthesis.num_active_ws(stage),
                                        truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                                        update_w_avg=False)
        return self.synthesis(ws, stage=stage, alpha=alpha, noise_mode=noise_mode)


class StyleGANDiscriminator(ProGANDiscriminator):
    """StyleGAN discriminator: ProGAN's (Table 2) with the configured resampling (App. C).

    ``D(x, stage, alpha)`` -> ``(N, 1)`` raw scores; layout in
    :class:`genface.nn.progressive.ProgressiveDiscriminator`.

    Args:
        config: a :class:`StyleGANConfig` (or mapping); ``None`` = defaults.
        **overrides: field overrides.
    """

    config_class = StyleGANConfig


class StyleGAN(GANWrapperAPI, GANPair):
    """StyleGAN generator + discriminator (``.generator``, ``.discriminator``, ``.z_dim``).

    Args:
        config: a :class:`StyleGANConfig` (or mapping); ``None`` = defaults.
        **overrides: field overrides.
    """

    config_class = StyleGANConfig
    generator_class = StyleGANGenerator
    discriminator_class = StyleGANDiscriminator

    @classmethod
    def ablation(cls, name: str, **overrides) -> StyleGAN:
        """Build StyleGAN Table 1 config ``name`` (``"A"``..``"F"``) with further overrides."""
        if name not in ABLATION_CONFIGS:
            raise ValueError(f"unknown ablation config {name!r}; valid: {sorted(ABLATION_CONFIGS)}")
        return cls(**{**ABLATION_CONFIGS[name], **overrides})
