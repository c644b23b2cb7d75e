"""FaceSwap "original": a shared encoder and one decoder per identity.

The model of the deepfakes/faceswap project (``plugins/train/model/original.py``), the
simplified FaceSwap of the thesis: an autoencoder whose encoder is shared by every identity
and whose decoders are identity specific. Trained to reconstruct (randomly warped) faces of
each identity with that identity's decoder, it swaps a face of A into B by encoding it and
decoding with B's decoder.

Layout at 64 px with ``width=1`` (the thesis' Listings 1-3)::

    Encoder: 4 x [Conv2d k5 s2 "same" + LeakyReLU(0.1)]  128, 256, 512, 1024 filters
             -> flatten -> Dense(1024) -> Dense(4*4*1024) -> reshape (1024, 4, 4)
             -> Upscale(512)                                  -> z: (B, 512, 8, 8)
    Decoder: Upscale(256) -> Upscale(128) -> Upscale(64)
             -> Conv2d(3, k5, "same") + sigmoid               -> (B, 3, 64, 64) in [0, 1]
             [-> Conv2d(1, k5, "same") + sigmoid: the optional learned mask]
    Upscale(f) = Conv2d(4f, k3, "same") + LeakyReLU(0.1) + PixelShuffle(2)

The encoder has exactly 69,662,976 parameters and each decoder 6,199,747 (no mask head).

Inputs and outputs are images in ``[0, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from genface.models.base import PretrainedMixin, build_config

__all__ = [
    "FaceSwapConfig",
    "FaceSwap",
    "FaceSwapEncoder",
    "FaceSwapDecoder",
    "Upscale",
    "PRESETS",
    "build_faceswap",
    "INITS",
    "init_weights",
]


#: Weight initialisations accepted by :attr:`FaceSwapConfig.init`.
INITS = ("glorot", "icnr", "torch")


@dataclass
class FaceSwapConfig:
    """Configuration of :class:`FaceSwap`; the defaults are faceswap's "original" model."""

    resolution: int = 64  # Face size in pixels (square). 64 = "original"; 128 = the 128 px variant
    # (encoder bottleneck reshaped to resolution/16 squared, as in DFL-H128). Any multiple of 16.
    num_identities: int = 2  # Number of identity decoders (A, B, ...). At least 1.
    width: float = 1.0  # Multiplier on every conv/dense width (128..1024 encoder filters, Dense
    # 1024, decoder 256..64). 1.0 = the published model; 0.25 = the CPU-trainable "lite" preset.
    dense_dim: int | None = None  # Width of the encoder's Dense bottleneck; None = 1024 * width.
    in_channels: int = 3  # Image channels of input and output.
    learn_mask: bool = False  # Add faceswap's learned mask head (1 channel, sigmoid) to every
    # decoder; False = no mask head (swaps then use a landmark-hull mask).
    negative_slope: float = 0.1  # LeakyReLU slope of every block (faceswap: 0.1).
    encoder_filters: tuple[int, ...] = field(default=(128, 256, 512, 1024))  # Encoder conv
    # filters before ``width`` scaling; each conv halves the resolution.
    decoder_filters: tuple[int, ...] = field(default=(256, 128, 64))  # Decoder Upscale filters
    # before ``width`` scaling; each Upscale doubles the resolution.
    keras_padding: bool = False  # Pad the stride-2 encoder convs as Keras/TF "same" does (1 before,
    # 2 after on even sizes) instead of 2 on both sides; True for weights imported from
    # faceswap's Keras .h5 files (genface.interop.keras), which then give the same outputs.
    init: str = "glorot"  # Weight init: "glorot" = Keras' default (glorot_uniform kernels,
    # zero biases), which faceswap trains with; "icnr" = glorot plus ICNR (Aitken et al. 2017)
    # on the Upscale convs (faceswap's icnr_init option: no checkerboard at the start);
    # "torch" = PyTorch's default (kaiming_uniform a=sqrt(5)), whose ~1/sqrt(3 fan_in)
    # weights shrink the signal through the 12 unnormalised layers so that training sits on
    # a mean-face plateau for hundreds of steps (measured: 3 of 5 seeds stuck at 300 steps).

    def __post_init__(self):
        self.encoder_filters = tuple(int(f) for f in self.encoder_filters)
        self.decoder_filters = tuple(int(f) for f in self.decoder_filters)
        if self.num_identities < 1:
            raise ValueError(f"num_identities must be >= 1, got {self.num_identities}")
        if self.width <= 0:
            raise ValueError(f"width must be > 0, got {self.width}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        down = 2 ** len(self.encoder_filters)
        up = 2 ** (len(self.decoder_filters) + 1)  # + the encoder's own Upscale
        if self.resolution % down or self.resolution // down * up != self.resolution:
            raise ValueError(
                f"resolution {self.resolution} does not fit {len(self.encoder_filters)} stride-2 "
                f"convs and {len(self.decoder_filters) + 1} x2 upscales: use 64 or 128 with the "
                "default filters"
            )


#: Named presets (keyword overrides of :class:`FaceSwapConfig`).
PRESETS: dict[str, dict] = {
    "original": {},  # faceswap "original", 64 px, ~82M parameters with 2 identities
    "lite": {"width": 0.25},  # same layout with 1/4 widths (~5.1M params, 2 ids): trains on a CPU
    "original128": {"resolution": 128},  # 128 px: bottleneck reshaped to 8x8
    "lite128": {"resolution": 128, "width": 0.25},
}


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


class Upscale(nn.Sequential):
    """faceswap's ``UpscaleBlock``: Conv2d k3 "same" to ``4 * filters``, LeakyReLU, PixelShuffle(2).

    Args:
        in_channels: input channels.
        filters: output channels (after the pixel shuffle).
        negative_slope: LeakyReLU slope.
    """

    def __init__(self, in_channels: int, filters: int, negative_slope: float = 0.1):
        super().__init__(
            nn.Conv2d(in_channels, 4 * filters, kernel_size=3, padding=1),
            nn.LeakyReLU(negative_slope),
            nn.PixelShuffle(2),
        )


def _icnr_(weight: torch.Tensor, scale: int = 2) -> None:
    """ICNR (Aitken et al. 2017, "Checkerboard artifact free sub-pixel convolution"): fill a
    conv kernel (C_out, C_in, k, k) that feeds ``PixelShuffle(scale)`` so that the shuffled
    output starts as a nearest-neighbour upsampling: one glorot kernel per output channel,
    repeated over its ``scale**2`` sub-pixel positions."""
    out_c = weight.shape[0] // scale**2
    sub = torch.empty(out_c, *weight.shape[1:])
    nn.init.xavier_uniform_(sub)
    with torch.no_grad():
        weight.copy_(sub.repeat_interleave(scale**2, dim=0))


@torch.no_grad()
def init_weights(module: nn.Module, icnr: bool = False) -> None:
    """Keras' default initialisation on every Conv2d and Linear of ``module``:
    glorot_uniform kernels (Glorot & Bengio 2010) and zero biases; with ``icnr`` the convs of
    every :class:`Upscale` get :func:`_icnr_` instead."""
    upscale_convs = {id(m[0]) for m in module.modules() if isinstance(m, Upscale)} if icnr else set()
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if id(m) in upscale_convs:
                _icnr_(m.weight)
            else:
                nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class KerasSameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TF/Keras ``padding="same"``: total padding ``max(k - s, 0)`` on even
    sizes split as ``(total // 2, total - total // 2)`` (more after), as TF computes it.
    Same parameters (and state-dict keys) as ``nn.Conv2d``; the ``padding`` argument is ignored."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
            pads += [total // 2, total - total // 2]
        return nn.functional.conv2d(nn.functional.pad(x, pads), self.weight, self.bias, self.stride)


class FaceSwapEncoder(nn.Module):
    """The shared encoder: strided convs, a Dense bottleneck and one Upscale.

    Args:
        config: the model configuration; see :class:`FaceSwapConfig`.
    """

    def __init__(self, config: FaceSwapConfig):
        super().__init__()
        w = config.width
        filters = [_scaled(f, w) for f in config.encoder_filters]
        layers: list[nn.Module] = []
        c = config.in_channels
        conv = KerasSameConv2d if config.keras_padding else nn.Conv2d
        for f in filters:
            # Keras "same" padding for k5 s2 on an even size pads (1, 2); symmetric 2 gives the
            # same output size and parameter count (keras_padding=True pads as Keras does).
            layers += [conv(c, f, kernel_size=5, stride=2, padding=2),
                       nn.LeakyReLU(config.negative_slope)]
            c = f
        self.convs = nn.Sequential(*layers)
        self.bottleneck_hw = config.resolution // 2 ** len(filters)
        self.bottleneck_channels = c
        dense = config.dense_dim if config.dense_dim is not None else _scaled(1024, w)
        flat = c * self.bottleneck_hw**2
        self.dense1 = nn.Linear(flat, dense)
        self.dense2 = nn.Linear(dense, flat)
        self.upscale = Upscale(c, _scaled(config.decoder_filters[0] * 2, w), config.negative_slope)
        self.out_channels = _scaled(config.decoder_filters[0] * 2, w)
        self.resolution = config.resolution
        self.in_channels = config.in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, R, R) in [0, 1] -> latent z (B, 512*width, R/8, R/8)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[-2:] != (self.resolution,) * 2:
            raise ValueError(
                f"FaceSwap expects faces of shape (B, {self.in_channels}, {self.resolution}, "
                f"{self.resolution}), got {tuple(x.shape)}"
            )
        h = self.convs(x)
        h = self.dense2(self.dense1(h.flatten(1)))
        h = h.view(-1, self.bottleneck_channels, self.bottleneck_hw, self.bottleneck_hw)
        return self.upscale(h)


class FaceSwapDecoder(nn.Module):
    """One identity's decoder: three Upscales and a k5 conv to RGB (plus the optional mask).

    Args:
        config: the model configuration; see :class:`FaceSwapConfig`.
        in_channels: channels of the latent z.
    """

    def __init__(self, config: FaceSwapConfig, in_channels: int):
        super().__init__()
        blocks = []
        c = in_channels
        for f in config.decoder_filters:
            f = _scaled(f, config.width)
            blocks.append(Upscale(c, f, config.negative_slope))
            c = f
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Conv2d(c, config.in_channels, kernel_size=5, padding=2)
        self.to_mask = nn.Conv2d(c, 1, kernel_size=5, padding=2) if config.learn_mask else None

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """z -> (image (B, C, R, R) in [0, 1], mask (B, 1, R, R) in [0, 1] or None)."""
        h = self.blocks(z)
        rgb = torch.sigmoid(self.to_rgb(h))
        mask = torch.sigmoid(self.to_mask(h)) if self.to_mask is not None else None
        return rgb, mask


class FaceSwap(PretrainedMixin, nn.Module):
    """Shared-encoder, per-identity-decoder face swap autoencoder (deepfakes/faceswap "original").

    Args:
        config: a :class:`FaceSwapConfig` (or mapping); ``None`` = the defaults.
        **overrides: fields of :class:`FaceSwapConfig` overriding ``config``.

    Example::

        net = FaceSwap(width=0.25)             # or build_faceswap("lite")
        a_as_b = net.swap(faces_a, to=1)       # faces in [0, 1], (B, 3, 64, 64)
    """

    config_class = FaceSwapConfig

    def __init__(self, config: FaceSwapConfig | None = None, **overrides):
        super().__init__()
        self.config = build_config(FaceSwapConfig, config, **overrides)
        self.encoder = FaceSwapEncoder(self.config)
        self.decoders = nn.ModuleList(
            FaceSwapDecoder(self.config, self.encoder.out_channels)
            for _ in range(self.config.num_identities)
        )
        if self.config.init != "torch":
            init_weights(self, icnr=self.config.init == "icnr")

    @property
    def num_identities(self) -> int:
        return self.config.num_identities

    @property
    def has_mask(self) -> bool:
        return self.config.learn_mask

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Faces (B, 3, R, R) in [0, 1] -> shared latent z (B, 512*width, R/8, R/8)."""
        return self.encoder(x)

    def decode(
        self, z: torch.Tensor, identity: int | torch.Tensor, return_mask: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """Decode z with one identity's decoder.

        Args:
            z: latents from :meth:`encode`.
            identity: decoder index, an int for the whole batch or an int64 tensor (B,) with
                one index per sample.
            return_mask: also return the learned mask (None when ``learn_mask`` is off).
        """
        if isinstance(identity, torch.Tensor) and identity.ndim > 0:
            if identity.shape != (z.shape[0],):
                raise ValueError(f"identity tensor must have shape ({z.shape[0]},), got "
                                 f"{tuple(identity.shape)}")
            rgb = mask = None
            for i in identity.unique().tolist():
                sel = identity == i
                r, m = self._decoder(i)(z[sel])
                if rgb is None:
                    rgb = z.new_empty((z.shape[0], *r.shape[1:]))
                    mask = z.new_empty((z.shape[0], 1, *r.shape[2:])) if m is not None else None
                rgb[sel] = r
                if m is not None:
                    mask[sel] = m
        else:
            rgb, mask = self._decoder(int(identity))(z)
        return (rgb, mask) if return_mask else rgb

    def _decoder(self, identity: int) -> FaceSwapDecoder:
        if not 0 <= identity < self.config.num_identities:
            raise IndexError(
                f"identity {identity} out of range: this model has decoders "
                f"0..{self.config.num_identities - 1}"
            )
        return self.decoders[identity]

    def forward(self, x: torch.Tensor, identity: int | torch.Tensor, return_mask: bool = False):
        """Reconstruct (or swap) faces ``x`` with ``identity``'s decoder; see :meth:`decode`."""
        return self.decode(self.encode(x), identity, return_mask=return_mask)

    @torch.no_grad()
    def swap(self, x: torch.Tensor, to: int | torch.Tensor, return_mask: bool = False):
        """Swap faces ``x`` (``(N, 3, H, W)`` or one ``(3, H, W)`` face, any identity) into identity ``to``."""
        if x.ndim == 3:  # one face: the same shape comes back
            out = self.forward(x[None], to, return_mask=return_mask)
            return tuple(o[0] for o in out) if isinstance(out, tuple) else out[0]
        return self.forward(x, to, return_mask=return_mask)


def build_faceswap(preset: str = "original", **overrides) -> FaceSwap:
    """Build a :class:`FaceSwap` from a named preset.

    Args:
        preset: one of :data:`PRESETS` ("original", "lite", "original128", "lite128").
        **overrides: further :class:`FaceSwapConfig` fields (e.g. ``num_identities=3``).
    """
    if preset not in PRESETS:
        raise KeyError(f"unknown FaceSwap preset {preset!r}; valid presets: {sorted(PRESETS)}")
    return FaceSwap(**{**PRESETS[preset], **overrides})
