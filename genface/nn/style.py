"""Style-based generator primitives: pixel norm, mapping network, AdaIN, noise, modulated conv.

Papers and the symbols used here:

* ProGAN (Karras et al., arXiv 1710.10196) §4.2, pixelwise feature normalisation
  ``b = a / sqrt(mean_j a_j^2 + eps)``: :class:`PixelNorm`.
* StyleGAN (Karras et al., arXiv 1812.04948) §2: mapping network ``f: Z -> W`` (8 FC layers,
  LR multiplier 0.01): :class:`MappingNetwork`; Eq. (1)
  ``AdaIN(x_i, y) = y_s,i (x_i - mu(x_i)) / sigma(x_i) + y_b,i`` with ``y = A(w)``:
  :class:`AdaIN`; per-pixel noise scaled per feature by ``B``: :class:`NoiseInjection`;
  learned constant input: :class:`ConstantInput`; truncation ``w' = w_avg + psi (w - w_avg)``
  (§3.1 / App. B): :meth:`MappingNetwork.forward`.
* StyleGAN2 (Karras et al., arXiv 1912.04958) §2.2: Eq. (1) modulation
  ``w'_ijk = s_i · w_ijk``, Eq. (3) demodulation
  ``w''_ijk = w'_ijk / sqrt(sum_{i,k} w'_ijk^2 + eps)``: :class:`ModulatedConv2d`; skip
  generator output branches: :class:`ToRGB`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genface.nn.equalized import EqualLinear
from genface.nn.resample import Blur, FIRUpsample

__all__ = [
    "PixelNorm", "pixel_norm", "MappingNetwork", "AdaIN", "NoiseInjection", "NOISE_MODES",
    "ConstantInput", "ModulatedConv2d", "ToRGB",
]

#: Noise modes of :class:`NoiseInjection`: fresh noise per call, the layer's fixed buffer, or none.
NOISE_MODES = ("random", "const", "none")


def pixel_norm(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """ProGAN Eq. in §4.2: ``x / sqrt(mean(x^2 over dim) + eps)``."""
    return x * torch.rsqrt(x.square().mean(dim=dim, keepdim=True) + eps)


class PixelNorm(nn.Module):
    """Pixelwise feature vector normalisation (ProGAN §4.2); also normalises ``z`` in StyleGAN.

    Works on ``(N, C)`` latents and ``(N, C, H, W)`` feature maps (normalises over ``C``).

    Args:
        eps: added to the mean square (1e-8 in the papers).
    """

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim not in (2, 4):
            raise ValueError(f"PixelNorm expects (N, C) or (N, C, H, W), got {tuple(x.shape)}")
        return pixel_norm(x, 1, self.eps)


class MappingNetwork(nn.Module):
    """StyleGAN's mapping network ``f: Z -> W`` (arXiv 1812.04948 §2, Fig. 1b).

    ``z`` is pixel-normalised, passed through ``num_layers`` equalised FC layers with
    LeakyReLU and LR multiplier ``lr_mul``; the running mean ``w_avg`` is tracked for the
    truncation trick ``w' = w_avg + psi (w - w_avg)``. The 8x512 default has
    8 · (512·512 + 512) = 2,101,248 parameters.

    Args:
        z_dim: dimension of ``z``.
        w_dim: dimension of ``w``; must equal ``z_dim`` when ``num_layers == 0``.
        num_layers: FC layers (8 in StyleGAN); 0 = no mapping network, ``w`` is the
            normalised ``z`` (StyleGAN Table 1, configs A/B).
        hidden_dim: width of the hidden layers; ``None`` = ``w_dim``.
        lr_mul: learning-rate multiplier of every layer (0.01 in StyleGAN, App. C).
        normalize_z: pixel-normalise ``z`` first (False = feed it as is).
        w_avg_beta: decay of the ``w_avg`` moving average (0.995); ``None`` = do not track.
        num_ws: broadcast ``w`` to ``(N, num_ws, w_dim)`` (one row per synthesis layer);
            ``None`` = return ``(N, w_dim)``.
    """

    def __init__(self, z_dim: int = 512, w_dim: int = 512, num_layers: int = 8,
                 hidden_dim: int | None = None, lr_mul: float = 0.01, normalize_z: bool = True,
                 w_avg_beta: float | None = 0.995, num_ws: int | None = None):
        super().__init__()
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        if num_layers == 0 and z_dim != w_dim:
            raise ValueError(f"without mapping layers w is z: need z_dim == w_dim, got {z_dim} != {w_dim}")
        self.z_dim, self.w_dim, self.num_layers, self.num_ws = z_dim, w_dim, num_layers, num_ws
        self.normalize_z, self.w_avg_beta = normalize_z, w_avg_beta
        hidden_dim = w_dim if hidden_dim is None else hidden_dim
        dims = [z_dim] + [hidden_dim] * (num_layers - 1) + [w_dim] if num_layers else []
        self.layers = nn.ModuleList(
            EqualLinear(i, o, lr_mul=lr_mul, activation="lrelu") for i, o in zip(dims[:-1], dims[1:])
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_w_avg: bool = False
                ) -> torch.Tensor:
        """Map ``z`` to ``w`` (``(N, w_dim)``, or ``(N, num_ws, w_dim)`` when ``num_ws`` is set).

        Args:
            z: ``(N, z_dim)`` latents.
            truncation_psi: ``psi`` of the truncation trick; 1.0 = no truncation, 0 = every
                ``w`` becomes ``w_avg``.
            truncation_cutoff: truncate only the first ``cutoff`` ws rows (StyleGAN used 8,
                i.e. the coarse layers); ``None`` = all rows.
            update_w_avg: update the ``w_avg`` moving average with this batch (NVlabs'
                ``update_emas``); the training module asks for it in its training passes. The
                network behaves the same in train and eval mode.
        """
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"MappingNetwork expected z of shape (N, {self.z_dim}), got {tuple(z.shape)}")
        x = pixel_norm(z) if self.normalize_z else z
        for layer in self.layers:
            x = layer(x)
        if update_w_avg and self.w_avg_beta is not None:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(0).to(self.w_avg.dtype).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x[:, None, :].repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            x = self.truncate(x, truncation_psi, truncation_cutoff)
        return x

    def truncate(self, w: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
        """The truncation trick ``w_avg + psi (w - w_avg)`` on ``(N, w_dim)`` or the first
        ``cutoff`` rows of ``(N, num_ws, w_dim)``."""
        avg = self.w_avg.to(w.dtype)
        if w.ndim == 2:
            if cutoff is not None:
                raise ValueError("truncation_cutoff needs ws rows: build the mapping with num_ws")
            return avg.lerp(w, psi)
        w = w.clone()
        w[:, :cutoff] = avg.lerp(w[:, :cutoff], psi)
        return w

    def extra_repr(self) -> str:
        return (f"z_dim={self.z_dim}, w_dim={self.w_dim}, num_layers={self.num_layers}, "
                f"num_ws={self.num_ws}, w_avg_beta={self.w_avg_beta}")


class AdaIN(nn.Module):
    """Adaptive instance normalisation, StyleGAN Eq. (1): ``y_s (x - mu(x)) / sigma(x) + y_b``.

    ``y = (y_s, y_b) = A(w)`` with ``A`` a learned equalised affine (the "A" boxes of
    StyleGAN Fig. 1b); ``y_s`` is parametrised as ``1 + A_s(w)`` as in the official code so
    that it starts around 1.

    Args:
        channels: feature channels of ``x``.
        w_dim: dimension of ``w``.
        eps: added to the variance in the instance normalisation.
    """

    def __init__(self, channels: int, w_dim: int, eps: float = 1e-8):
        super().__init__()
        self.channels, self.eps = channels, eps
        self.affine = EqualLinear(w_dim, 2 * channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"AdaIN expected x of shape (N, {self.channels}, H, W), got {tuple(x.shape)}")
        x = x - x.mean(dim=(2, 3), keepdim=True)
        x = x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + self.eps)
        y_s, y_b = self.affine(w)[:, :, None, None].chunk(2, dim=1)
        return x * (y_s + 1) + y_b


class NoiseInjection(nn.Module):
    """Per-pixel Gaussian noise scaled by learned strengths (the "B" boxes of StyleGAN Fig. 1b).

    ``x + B · noise`` with one single-channel noise image per sample broadcast over the
    features. StyleGAN learns one strength per feature (``channels = C``); StyleGAN2 one
    scalar per layer (``channels = 1``). Strengths start at 0.

    Args:
        channels: number of learned strengths: ``C`` (per feature) or 1 (per layer).
        resolution: if set, registers a fixed ``noise_const`` buffer of ``(1, 1, res, res)``
            used by ``noise_mode="const"``; ``None`` = no const noise available.
    """

    def __init__(self, channels: int = 1, resolution: int | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))
        self.resolution = resolution
        if resolution is not None:
            self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))
        else:
            self.noise_const = None

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None,
                noise_mode: str = "random") -> torch.Tensor:
        """Add noise.

        Args:
            x: ``(N, C, H, W)`` features.
            noise: explicit ``(N or 1, 1, H, W)`` noise; overrides ``noise_mode``.
            noise_mode: ``"random"`` (fresh N(0,1) per call), ``"const"`` (the fixed buffer),
                ``"none"`` (add nothing).
        """
        term = self.scaled_noise(x, noise, noise_mode)
        return x if term is None else x + term

    def scaled_noise(self, x: torch.Tensor, noise: torch.Tensor | None = None,
                     noise_mode: str = "random") -> torch.Tensor | None:
        """The term :meth:`forward` adds, ``B · noise`` ``(N or 1, C or 1, H, W)``; ``None`` for ``"none"``.

        Args: as :meth:`forward`.
        """
        if noise is None:
            if noise_mode == "none":
                return None
            if noise_mode == "random":
                noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
            elif noise_mode == "const":
                if self.noise_const is None:
                    raise ValueError("noise_mode='const' needs NoiseInjection(resolution=...)")
                noise = self.noise_const.to(x.dtype)
            else:
                raise ValueError(f"unknown noise_mode {noise_mode!r}; valid: {list(NOISE_MODES)}")
        if noise.ndim != 4 or noise.shape[1] != 1 or noise.shape[2:] != x.shape[2:]:
            raise ValueError(f"noise must be (N, 1, {x.shape[2]}, {x.shape[3]}), got {tuple(noise.shape)}")
        return self.weight.view(1, -1, 1, 1).to(x.dtype) * noise


class ConstantInput(nn.Module):
    """The learned constant ``4 x 4 x C`` input of the StyleGAN synthesis network (Fig. 1b).

    Args:
        channels: feature channels.
        size: spatial size (4 in the papers).
    """

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch_size: int) -> torch.Tensor:
        return self.weight.expand(batch_size, -1, -1, -1)


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution (arXiv 1912.04958 §2.2, Eqs. 1-3, Fig. 2c/d).

    ``s = A(w)`` (affine, bias 1); ``w'_ijk = s_i · w_ijk``; with demodulation
    ``w''_ijk = w'_ijk / sqrt(sum_{i,k} w'_ijk^2 + eps)``. Weights are equalised
    (``1/sqrt(in·k·k)``). Upsampling = transposed conv (stride 2) then a FIR blur;
    downsampling = FIR blur then stride-2 conv, as in the paper's Appendix B.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        w_dim: dimension of ``w``.
        demodulate: apply Eq. 3 (False for ToRGB).
        up: 2x upsampling (transposed conv + blur).
        down: 2x downsampling (blur + strided conv).
        blur_kernel: 1-D FIR taps of the blur around up/down.
        fused: one grouped convolution with per-sample weights (True, NVlabs'
            ``fused_modconv``) or scale activations before/after a shared-weight
            convolution (False; same result, faster for training batches, on CPU too);
            ``None`` = NVlabs' rule: fused in eval mode, unfused in training mode.
        eps: added inside the demodulation square root.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int,
                 demodulate: bool = True, up: bool = False, down: bool = False,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1), fused: bool | None = None,
                 eps: float = 1e-8):
        super().__init__()
        if up and down:
            raise ValueError("ModulatedConv2d: up and down are exclusive")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate, self.up, self.down, self.fused, self.eps = demodulate, up, down, fused, eps
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        taps = len(blur_kernel)
        if up:  # transposed conv gives 2H + k - 2; blur brings it to 2H
            p = taps - 2 - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + 1, p // 2 + 1), upsample_factor=2)
        elif down:  # blur gives H + k - 1; stride-2 valid conv gives H / 2
            p = taps - 2 + (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2, p // 2))
        else:
            self.blur = None

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool | None = None,
                return_dcoefs: bool = False):
        """``x``: ``(N, in_channels, H, W)``; ``w``: ``(N, w_dim)``. Returns ``(N, out, H', W')``.

        ``fused`` overrides the layer's setting for this call (``None`` = keep it).
        ``return_dcoefs=True`` returns ``(y, dcoefs)`` instead: on the unfused path ``y`` is
        *not* demodulated and ``dcoefs`` ``(N, out)`` are the factors that would have
        multiplied it (for a fused epilogue, :func:`genface.nn.fused.bias_lrelu`); ``None``
        when there is nothing left to apply (fused path or no demodulation).
        """
        n = x.shape[0]
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ModulatedConv2d expected (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if w.ndim != 2 or w.shape[0] != n:
            raise ValueError(f"ModulatedConv2d expected w of shape ({n}, w_dim), got {tuple(w.shape)}")
        fused = self.fused if fused is None else fused
        fused = (not self.training) if fused is None else fused
        styles = self.affine(w)  # (N, in)
        weight = self.weight * self.weight_gain  # (out, in, k, k)
        if fused:
            wgt = weight[None] * styles[:, None, :, None, None]  # (N, out, in, k, k), Eq. 1
            if self.demodulate:  # Eq. 3
                wgt = wgt * torch.rsqrt(wgt.square().sum(dim=(2, 3, 4), keepdim=True) + self.eps)
            x = x.reshape(1, n * self.in_channels, *x.shape[2:])
            x = self._conv(x, wgt.to(x.dtype), groups=n)  # weights follow x's dtype (mixed precision)
            x = x.reshape(n, self.out_channels, *x.shape[2:])
            return (x, None) if return_dcoefs else x
        x = x * styles.to(x.dtype)[:, :, None, None]
        x = self._conv(x, weight[None].to(x.dtype), groups=1)
        dcoefs = None
        if self.demodulate:
            dcoefs = torch.rsqrt(styles.square() @ weight.square().sum(dim=(2, 3)).t() + self.eps)  # (N, out)
            if not return_dcoefs:
                x = x * dcoefs.to(x.dtype)[:, :, None, None]
        return (x, dcoefs) if return_dcoefs else x

    def _conv(self, x: torch.Tensor, wgt: torch.Tensor, groups: int) -> torch.Tensor:
        """Convolve with ``wgt`` ``(G, out, in, k, k)`` as ``groups`` groups, with up/down."""
        g, o, i, k, _ = wgt.shape
        if self.up:
            wgt = wgt.transpose(1, 2).reshape(g * i, o, k, k)
            x = F.conv_transpose2d(x, wgt, stride=2, groups=groups)
            return self.blur(x)
        wgt = wgt.reshape(g * o, i, k, k)
        if self.down:
            return F.conv2d(self.blur(x), wgt, stride=2, groups=groups)
        return F.conv2d(x, wgt, padding=k // 2, groups=groups)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"demodulate={self.demodulate}, up={self.up}, down={self.down}, fused={self.fused}")


class ToRGB(nn.Module):
    """StyleGAN2 skip-generator output branch (arXiv 1912.04958 §4.1, Fig. 7b).

    A modulated 1x1 convolution without demodulation plus bias; when ``skip`` (the RGB image
    of the previous resolution) is given, it is FIR-upsampled and added.

    Args:
        in_channels: feature channels.
        w_dim: dimension of ``w``.
        out_channels: image channels.
        blur_kernel: FIR taps used to upsample the skip image.
        fused: see :class:`ModulatedConv2d`.
    """

    def __init__(self, in_channels: int, w_dim: int, out_channels: int = 3,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1), fused: bool | None = None):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 1, w_dim, demodulate=False, fused=fused)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.upsample = FIRUpsample(blur_kernel, 2)
        self.clamp: float | None = None  # clamp the branch's output to +-clamp before the skip sum (NVlabs conv_clamp); None = off

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        y = self.conv(x, w) + self.bias.view(1, -1, 1, 1).to(x.dtype)
        if self.clamp is not None:
            y = y.clamp(-self.clamp, self.clamp)
        if skip is not None:
            y = y + self.upsample(skip)
        return y
