"""StyleGAN2: Analyzing and Improving the Image Quality of StyleGAN (Karras, Laine, Aittala,
Hellsten, Lehtinen, Aila, CVPR 2020, arXiv 1912.04958).

Config F networks without progressive growing:

* Generator (Fig. 2d, Fig. 7b "skip"): mapping network ``f`` shared with StyleGAN
  (:class:`~genface.nn.style.MappingNetwork`); synthesis from a learned constant; every
  style block is a modulated 3x3 convolution with demodulation (Eqs. 1-3), with noise and
  bias added *outside* the style block; a modulated 1x1 ``ToRGB`` at every resolution whose
  outputs are upsampled and summed (skip architecture).
* Discriminator (Fig. 7c "residual"): ``FromRGB`` at the top resolution, residual blocks
  ``(conv3x3, conv3x3 down) + 1x1 down skip`` scaled by ``1/sqrt(2)``, and ProGAN's 4x4
  head with minibatch standard deviation.

Resampling uses the ``[1, 3, 3, 1]`` FIR filter (transposed conv + blur up, blur + strided
conv down). Lazy regularisation (R1, path length) lives in the training module.
Channel counts follow stylegan2-ada-pytorch: ``min(channel_base // res, channel_max)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from genface.models.api import GANWrapperAPI, GeneratorAPI
from genface.models.base import GANPair, PretrainedMixin, build_config
from genface.nn.equalized import EqualConv2d, EqualLinear, leaky_relu
from genface.nn.fused import FIRDownsampleStrided, bias_lrelu
from genface.nn.minibatch import MinibatchStdDev
from genface.nn.progressive import check_resolution
from genface.nn.resample import Blur
from genface.nn.style import ConstantInput, MappingNetwork, ModulatedConv2d, NoiseInjection, ToRGB

__all__ = ["StyleGAN2Config", "StyleGAN2Synthesis", "StyleGAN2Generator", "StyleGAN2Discriminator",
           "StyleGAN2", "compile_stylegan2"]


@dataclass
class StyleGAN2Config:
    """StyleGAN2 hyper-parameters; defaults are config F at 1024x1024 (stylegan2-ada-pytorch ``stylegan2``)."""

    resolution: int = 1024  # image size, a power of two in 8..1024
    z_dim: int = 512  # latent size of z
    w_dim: int = 512  # size of w
    img_channels: int = 3  # image channels
    mapping_layers: int = 8  # FC layers of the mapping network; 0 = none (w = normalised z)
    mapping_lr_mul: float = 0.01  # learning-rate multiplier of the mapping network
    w_avg_beta: float | None = 0.995  # decay of the tracked w_avg used by truncation; None = do not track
    channel_base: int = 32768  # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512  # cap on channels per layer
    blur_kernel: tuple[int, ...] = (1, 3, 3, 1)  # FIR taps for up/down-sampling
    fused_modconv: bool | None = None  # modulated conv as one grouped conv (True) or activation scaling (False); None = grouped in eval, scaling in training (NVlabs)
    num_fp16_res: int = 0  # NVlabs mixed precision: the top N resolutions of G and D compute in `fp16_dtype` (NVlabs: 4); 0 = fp32 throughout
    fp16_dtype: str = "bfloat16"  # reduced precision of those resolutions: "bfloat16" or "float16"
    conv_clamp: float | None = None  # clamp every layer's output to +-conv_clamp (NVlabs: 256 with fp16); None = no clamp
    fast_ops: bool = False  # fused epilogues and strided skip filters (genface.nn.fused; same maths to rounding, tested); False = the plain layer-by-layer path (opt-in: no CPU speed-up measured, docs/performance.md)
    mbstd_group_size: int = 4  # discriminator minibatch-stddev group size
    mbstd_num_channels: int = 1  # minibatch-stddev maps; 0 = none

    def __post_init__(self):
        check_resolution(self.resolution, model="StyleGAN2")
        self.blur_kernel = tuple(self.blur_kernel)  # JSON round trips give lists
        if self.fp16_dtype not in ("bfloat16", "float16"):
            raise ValueError(f"fp16_dtype must be 'bfloat16' or 'float16', got {self.fp16_dtype!r}")
        if self.num_fp16_res < 0:
            raise ValueError(f"num_fp16_res must be >= 0, got {self.num_fp16_res}")

    def compute_dtype(self, res: int) -> torch.dtype:
        """The dtype layers at resolution ``res`` compute in (NVlabs ``use_fp16``: ``res`` among the
        top ``num_fp16_res`` resolutions)."""
        if self.num_fp16_res and res >= max(self.resolution >> (self.num_fp16_res - 1), 8):
            return getattr(torch, self.fp16_dtype)
        return torch.float32

    def channels(self, res: int) -> int:
        """Feature maps at resolution ``res``."""
        return min(self.channel_base // res, self.channel_max)


class StyledLayer(nn.Module):
    """One StyleGAN2 layer (Fig. 2d): ``ModulatedConv2d`` (the "style block": mod + conv + demod),
    then noise ``B`` and bias ``b`` outside it, then LeakyReLU (·sqrt(2)).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        w_dim: dimension of ``w``.
        resolution: output resolution (for the const-noise buffer).
        up: 2x upsampling in the convolution.
        blur_kernel: FIR taps of the upsampling blur.
        fused: see :class:`~genface.nn.style.ModulatedConv2d`.
        fast: apply demodulation, noise, bias and the activation gain in one
            :func:`~genface.nn.fused.bias_lrelu` (False = one operation each, as written above).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 up: bool = False, blur_kernel: Sequence[int] = (1, 3, 3, 1), fused: bool | None = None,
                 fast: bool = False):
        super().__init__()
        self.fast = fast
        self.clamp: float | None = None  # clamp the output to +-clamp (StyleGAN2Config.conv_clamp); None = off
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, demodulate=True, up=up,
                                    blur_kernel=blur_kernel, fused=fused)
        self.noise = NoiseInjection(1, resolution)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if self.fast:
            y, dcoefs = self.conv(x, w, return_dcoefs=True)
            x = bias_lrelu(y, self.bias, dcoefs, self.noise.scaled_noise(y, noise_mode=noise_mode))
        else:
            x = self.noise(self.conv(x, w), noise_mode=noise_mode)
            x = leaky_relu(x + self.bias.view(1, -1, 1, 1).to(x.dtype))
        return x if self.clamp is None else x.clamp(-self.clamp, self.clamp)


class _SynthesisBlock(nn.Module):
    """Resolution ``res`` of the skip generator: up-conv, conv, ToRGB (+ upsampled skip)."""

    def __init__(self, in_channels: int, out_channels: int, cfg: StyleGAN2Config, res: int):
        super().__init__()
        self.conv0 = StyledLayer(in_channels, out_channels, cfg.w_dim, res, up=True,
                                 blur_kernel=cfg.blur_kernel, fused=cfg.fused_modconv, fast=cfg.fast_ops)
        self.conv1 = StyledLayer(out_channels, out_channels, cfg.w_dim, res,
                                 blur_kernel=cfg.blur_kernel, fused=cfg.fused_modconv, fast=cfg.fast_ops)
        self.to_rgb = ToRGB(out_channels, cfg.w_dim, cfg.img_channels, cfg.blur_kernel, cfg.fused_modconv)
        self.dtype = cfg.compute_dtype(res)  # NVlabs mixed precision (num_fp16_res)
        if cfg.conv_clamp is not None:
            self.conv0.clamp = self.conv1.clamp = self.to_rgb.clamp = cfg.conv_clamp


class StyleGAN2Synthesis(nn.Module):
    """Skip-architecture synthesis network (StyleGAN2 Fig. 7b).

    ``const`` -> ``conv1`` (4x4) -> ``to_rgb1``; then ``blocks[i]`` for 8..R
    (``conv0`` up, ``conv1``, ``to_rgb``). ws rows: ``conv1`` 0, ``to_rgb1`` 1; block ``i``
    (1-based) uses ``2i-1``, ``2i`` for its convs and ``2i+1`` for its ToRGB, so
    ``num_ws = 2 · log2(R) - 2`` (18 at 1024).

    Args:
        config: the generator's :class:`StyleGAN2Config`.
    """

    def __init__(self, config: StyleGAN2Config):
        super().__init__()
        cfg = config
        self.resolution = cfg.resolution
        self.w_dim, self.img_channels = cfg.w_dim, cfg.img_channels
        log2 = int(math.log2(cfg.resolution))
        self.num_ws = 2 * log2 - 2
        c4 = cfg.channels(4)
        self.const = ConstantInput(c4, 4)
        self.conv1 = StyledLayer(c4, c4, cfg.w_dim, 4, blur_kernel=cfg.blur_kernel, fused=cfg.fused_modconv,
                                 fast=cfg.fast_ops)
        self.to_rgb1 = ToRGB(c4, cfg.w_dim, cfg.img_channels, cfg.blur_kernel, cfg.fused_modconv)
        if cfg.conv_clamp is not None:
            self.conv1.clamp = self.to_rgb1.clamp = cfg.conv_clamp
        self.blocks = nn.ModuleList(
            _SynthesisBlock(cfg.channels(2 ** (r - 1)), cfg.channels(2**r), cfg, 2**r) for r in range(3, log2 + 1)
        )

    def forward(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        """Images ``(N, C, R, R)`` from ``ws`` ``(N, num_ws, w_dim)``.

        Args:
            ws: one ``w`` per layer.
            noise_mode: ``"random"``, ``"const"`` or ``"none"``.
        """
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"synthesis expected ws of shape (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        x = self.conv1(self.const(ws.shape[0]), ws[:, 0], noise_mode)
        img = self.to_rgb1(x, ws[:, 1])
        for i, block in enumerate(self.blocks, start=1):
            x = x.to(block.dtype)  # reduced precision in the top num_fp16_res resolutions; the RGB skip sum stays fp32
            x = block.conv0(x, ws[:, 2 * i - 1], noise_mode)
            x = block.conv1(x, ws[:, 2 * i], noise_mode)
            img = block.to_rgb(x, ws[:, 2 * i + 1], skip=img)
        return img


class StyleGAN2Generator(PretrainedMixin, GeneratorAPI, nn.Module):
    """StyleGAN2 generator: ``.mapping`` (shared :class:`MappingNetwork`) + ``.synthesis``.

    Args:
        config: a :class:`StyleGAN2Config` (or mapping); ``None`` = defaults (config F, 1024 px).
        **overrides: field overrides.
    """

    config_class = StyleGAN2Config

    def __init__(self, config: StyleGAN2Config | None = None, **overrides):
        super().__init__()
        self.config = cfg = build_config(StyleGAN2Config, config, **overrides)
        self.z_dim, self.w_dim, self.img_channels = cfg.z_dim, cfg.w_dim, cfg.img_channels
        self.resolution = cfg.resolution
        self.synthesis = StyleGAN2Synthesis(cfg)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.mapping_layers, lr_mul=cfg.mapping_lr_mul,
                                      normalize_z=True, w_avg_beta=cfg.w_avg_beta, num_ws=self.num_ws)

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                noise_mode: str = "random", mixing_prob: float = 0.0, update_w_avg: bool = False
                ) -> torch.Tensor:
        """``G(z)`` -> images ``(N, C, R, R)``; the same in train and eval mode.

        Args:
            z: ``(N, z_dim)`` latents.
            truncation_psi: truncation ``psi`` (1.0 = none).
            truncation_cutoff: truncate only the first ws rows; ``None`` = all.
            noise_mode: ``"random"``, ``"const"`` or ``"none"``.
            mixing_prob: style-mixing probability for this batch (the training module passes
                ``objective.style_mixing_prob`` in training passes); 0 = no mixing.
            update_w_avg: update the mapping's ``w_avg`` with this batch (NVlabs ``update_emas``).
        """
        ws = self.mapping(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_w_avg=update_w_avg)
        ws = self.mixing_regularization(z, ws, mixing_prob, truncation_psi=truncation_psi,
                                        truncation_cutoff=truncation_cutoff, update_w_avg=False)
        return self.synthesis(ws, noise_mode=noise_mode)


class _DownConv(nn.Sequential):
    """FIR blur then a stride-2 equalised conv (StyleGAN2 App. B downsampling).

    With ``fast`` and a 1x1 kernel the blur is evaluated only where the stride-2 conv samples
    it (:class:`~genface.nn.fused.FIRDownsampleStrided`, then a stride-1 1x1 conv): the same
    output, a quarter of the filtering. The state-dict keys (``1.weight``, ``1.bias``) do not change.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, blur_kernel: Sequence[int],
                 bias: bool = True, activation: str | None = "lrelu", fast: bool = False):
        p = len(blur_kernel) - 2 + kernel_size - 1
        pad = ((p + 1) // 2, p // 2)
        strided = fast and kernel_size == 1
        super().__init__(
            FIRDownsampleStrided(blur_kernel, pad=pad, factor=2) if strided else Blur(blur_kernel, pad=pad),
            EqualConv2d(in_channels, out_channels, kernel_size, stride=1 if strided else 2, padding=0, bias=bias,
                        activation=activation),
        )


class _DBlock(nn.Module):
    """Residual D block (Fig. 7c): ``(conv3x3 -> conv3x3 down) + conv1x1 down skip``, over sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int, blur_kernel: Sequence[int], fast: bool = False,
                 dtype: torch.dtype = torch.float32, clamp: float | None = None):
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, activation="lrelu")
        self.conv1 = _DownConv(in_channels, out_channels, 3, blur_kernel, fast=fast)
        self.skip = _DownConv(in_channels, out_channels, 1, blur_kernel, bias=False, activation=None, fast=fast)
        self.dtype, self.clamp = dtype, clamp  # NVlabs mixed precision (num_fp16_res) and conv_clamp; None = no clamp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dtype)
        if self.clamp is None:
            return (self.conv1(self.conv0(x)) + self.skip(x)) / math.sqrt(2)
        c = self.clamp
        y = self.conv1(self.conv0(x).clamp(-c, c)).clamp(-c, c)
        return (y + self.skip(x).clamp(-c, c)) / math.sqrt(2)


class StyleGAN2Discriminator(PretrainedMixin, nn.Module):
    """Residual discriminator (StyleGAN2 Fig. 7c) with a minibatch-stddev 4x4 head.

    ``from_rgb`` (1x1) at the top resolution, ``blocks`` from R down to 8 (each halves the
    resolution), then ``mbstd``, ``conv`` (3x3), ``fc`` and ``out`` (one raw score).

    Args:
        config: a :class:`StyleGAN2Config` (or mapping); ``None`` = defaults.
        **overrides: field overrides.
    """

    config_class = StyleGAN2Config

    def __init__(self, config: StyleGAN2Config | None = None, **overrides):
        super().__init__()
        self.config = cfg = build_config(StyleGAN2Config, config, **overrides)
        self.resolution = cfg.resolution
        self.img_channels = cfg.img_channels
        log2 = int(math.log2(cfg.resolution))
        self.from_rgb = EqualConv2d(cfg.img_channels, cfg.channels(cfg.resolution), 1, activation="lrelu")
        self.blocks = nn.ModuleList(
            _DBlock(cfg.channels(2**r), cfg.channels(2 ** (r - 1)), cfg.blur_kernel, cfg.fast_ops,
                    cfg.compute_dtype(2**r), cfg.conv_clamp)
            for r in range(log2, 2, -1)
        )
        c4 = cfg.channels(4)
        self.mbstd = MinibatchStdDev(cfg.mbstd_group_size, cfg.mbstd_num_channels) if cfg.mbstd_num_channels else None
        self.conv = EqualConv2d(c4 + cfg.mbstd_num_channels, c4, 3, activation="lrelu")
        self.fc = EqualLinear(c4 * 16, c4, activation="lrelu")
        self.out = EqualLinear(c4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw scores ``(N, 1)`` for images ``(N, img_channels, R, R)``."""
        r = self.resolution
        if x.ndim != 4 or x.shape[1:] != (self.img_channels, r, r):
            raise ValueError(f"StyleGAN2Discriminator expects (N, {self.img_channels}, {r}, {r}), got {tuple(x.shape)}")
        x = self.from_rgb(x.to(self.blocks[0].dtype if len(self.blocks) else torch.float32))
        if self.config.conv_clamp is not None:
            x = x.clamp(-self.config.conv_clamp, self.config.conv_clamp)
        for block in self.blocks:
            x = block(x)
        x = x.float()  # the 4x4 head in fp32 (NVlabs)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        return self.out(self.fc(x.flatten(1)))


class StyleGAN2(GANWrapperAPI, GANPair):
    """StyleGAN2 generator + discriminator (``.generator``, ``.discriminator``, ``.z_dim``).

    Args:
        config: a :class:`StyleGAN2Config` (or mapping); ``None`` = defaults.
        **overrides: field overrides.
    """

    config_class = StyleGAN2Config
    generator_class = StyleGAN2Generator
    discriminator_class = StyleGAN2Discriminator


def compile_stylegan2(net: StyleGAN2, **compile_kwargs) -> StyleGAN2:
    """The ``torch.compile`` mode: compiles ``generator.mapping``, ``generator.synthesis`` and
    ``discriminator`` in place (``nn.Module.compile``: parameters and state-dict keys unchanged).

    Each of the three traces as one graph with no graph break in training mode (tested with
    ``torch._dynamo.explain``); the style-mixing draw between mapping and synthesis stays in
    Python (a host-side random choice per batch). Compiled graphs do not support the double
    backward of the lazy regularisers (R1, path length): run those steps under
    ``torch.compiler.set_stance("force_eager")``, which runs the same modules eagerly and
    does not recompile (tested).

    Args:
        net: a :class:`StyleGAN2`.
        **compile_kwargs: passed to ``torch.compile`` (``mode``, ``backend``, ``dynamic``...).
    """
    net.generator.mapping.compile(**compile_kwargs)
    net.generator.synthesis.compile(**compile_kwargs)
    net.discriminator.compile(**compile_kwargs)
    return net
