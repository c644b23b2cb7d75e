"""CycleGAN: Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017, arXiv 1703.10593.

Two mappings between the domains X (faces of A) and Y (faces of B): ``G: X -> Y``
(:attr:`CycleGAN.g_ab`) and ``F: Y -> X`` (:attr:`CycleGAN.g_ba`), and two discriminators,
``D_X`` (:attr:`CycleGAN.d_a`, real A against F(b)) and ``D_Y`` (:attr:`CycleGAN.d_b`,
real B against G(a)). As a face swapper it turns a face of A into B with G and a face of B
into A with F (:meth:`CycleGAN.swap`), so genface-swap converts images and videos with it.

Architecture (appendix 7.2; the reference implementation junyanz/pytorch-CycleGAN-and-pix2pix,
``models/networks.py``):

    G, F: c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-3 + tanh
          (Johnson et al. 2016's ResNet; reflection padding; instance norm, affine=False)
    D_X, D_Y: the 70x70 PatchGAN C64-C128-C256-C512 + a 1-channel conv (no norm on C64)

With the defaults (``ngf=ndf=64``, 9 residual blocks, instance norm) a generator has
11,378,179 parameters (the reference's ``resnet_9blocks``) and a discriminator 2,764,737
(the reference's ``basic`` D, printed as 2.765 M); both tested. The paper uses 6 blocks
below 256 px and 9 at 256 px and above. Weights are initialised N(0, 0.02) as the reference.

Images in and out of the generators are in ``[-1, 1]``; :meth:`CycleGAN.swap` takes and
returns ``[0, 1]`` faces, as :meth:`genface.models.faceswap.FaceSwap.swap` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genface.models.base import PretrainedMixin, build_config
from genface.nn.blocks import dcgan_init_
from genface.nn.translation import (
    NORMS,
    ConvNormAct,
    PatchGANDiscriminator,
    ResidualBlock,
    UpConvNormAct,
)

__all__ = ["CycleGANConfig", "CycleGAN", "ResnetGenerator"]


@dataclass
class CycleGANConfig:
    """Configuration of :class:`CycleGAN`; the defaults are the reference's 256 px model."""

    resolution: int = 256  # face side in pixels; any multiple of 4 (two stride-2 convs). Only
    # checked against inputs; the networks are fully convolutional.
    channels: int = 3  # image channels of both domains
    ngf: int = 64  # generator width: filters of c7s1-64 (d128, d256 and R256 scale with it)
    ndf: int = 64  # discriminator width: filters of C64
    n_blocks: int = 9  # residual blocks R256 (paper: 6 below 256 px, 9 at 256 px and above)
    d_layers: int = 3  # PatchGAN stride-2 layers: 3 = the 70x70 PatchGAN
    norm: str = "instance"  # "instance" (CycleGAN), "batch" (pix2pix) or "none"
    dropout: float = 0.0  # dropout inside the residual blocks (CycleGAN: 0 = none)

    def __post_init__(self):
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {list(NORMS)}, got {self.norm!r}")
        if self.resolution % 4:
            raise ValueError(f"resolution must be a multiple of 4, got {self.resolution}")
        if self.n_blocks < 0 or self.d_layers < 1:
            raise ValueError("n_blocks must be >= 0 and d_layers >= 1")

    # Read by genface.faces.convert.FaceSwapper, which swaps with any model of this shape.
    @property
    def num_identities(self) -> int:
        """Identities a swap can target: 2 (0 = A, 1 = B)."""
        return 2

    @property
    def learn_mask(self) -> bool:
        """CycleGAN has no mask head (swaps use the landmark-hull mask)."""
        return False


class ResnetGenerator(nn.Module):
    """Johnson et al.'s ResNet generator in CycleGAN's layout (appendix 7.2).

    ``c7s1-ngf, d(2 ngf), d(4 ngf), R(4 ngf) x n_blocks, u(2 ngf), u(ngf), c7s1-C`` + tanh.

    Args:
        config: the model configuration (``channels``, ``ngf``, ``n_blocks``, ``norm``, ``dropout``).
    """

    def __init__(self, config: CycleGANConfig):
        super().__init__()
        c, ngf, norm = config.channels, config.ngf, config.norm
        layers: list[nn.Module] = [ConvNormAct(c, ngf, 7, 1, 3, "reflect", norm, "relu")]  # c7s1-64
        layers += [ConvNormAct(ngf, 2 * ngf, 3, 2, 1, "zeros", norm, "relu"),  # d128
                   ConvNormAct(2 * ngf, 4 * ngf, 3, 2, 1, "zeros", norm, "relu")]  # d256
        layers += [ResidualBlock(4 * ngf, norm, config.dropout) for _ in range(config.n_blocks)]  # R256
        layers += [UpConvNormAct(4 * ngf, 2 * ngf, norm), UpConvNormAct(2 * ngf, ngf, norm)]  # u128, u64
        layers += [ConvNormAct(ngf, c, 7, 1, 3, "reflect", "none", "tanh", bias=True)]  # c7s1-3
        self.net = nn.Sequential(*layers)
        self.channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1], H and W multiples of 4 -> (N, C, H, W) in [-1, 1]."""
        if x.ndim != 4 or x.shape[1] != self.channels or x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"ResnetGenerator expects (N, {self.channels}, H, W) with H, W multiples of 4, "
                             f"got {tuple(x.shape)}")
        return self.net(x)


class CycleGAN(PretrainedMixin, nn.Module):
    """The four networks of CycleGAN: ``g_ab`` (G), ``g_ba`` (F), ``d_a`` (D_X), ``d_b`` (D_Y).

    Args:
        config: a :class:`CycleGANConfig` (or mapping); None = the defaults.
        **overrides: fields of :class:`CycleGANConfig` to change.

    Example::

        net = CycleGAN(resolution=64, n_blocks=6)
        a_as_b = net.swap(faces_a, to=1)      # [0, 1] faces (N, 3, 64, 64), G
        b_as_a = net.swap(faces_b, to=0)      # F
    """

    config_class = CycleGANConfig

    def __init__(self, config: CycleGANConfig | None = None, **overrides):
        super().__init__()
        self.config = cfg = build_config(CycleGANConfig, config, **overrides)
        self.g_ab = ResnetGenerator(cfg)
        self.g_ba = ResnetGenerator(cfg)
        self.d_a = PatchGANDiscriminator(cfg.channels, cfg.ndf, cfg.d_layers, cfg.norm)
        self.d_b = PatchGANDiscriminator(cfg.channels, cfg.ndf, cfg.d_layers, cfg.norm)
        dcgan_init_(self)  # N(0, 0.02) weights, zero biases: the reference's init_type="normal"

    @property
    def generators(self) -> tuple[nn.Module, nn.Module]:
        """(G, F)."""
        return self.g_ab, self.g_ba

    @property
    def discriminators(self) -> tuple[nn.Module, nn.Module]:
        """(D_X on A, D_Y on B)."""
        return self.d_a, self.d_b

    def translate(self, x: torch.Tensor, to: int) -> torch.Tensor:
        """Faces (N, C, H, W) in [-1, 1] into domain ``to``: 1 = B with G, 0 = A with F (with gradients)."""
        if to not in (0, 1):
            raise IndexError(f"CycleGAN translates into identity 0 (A, with F) or 1 (B, with G), got {to}")
        return (self.g_ab if to == 1 else self.g_ba)(x)

    def forward(self, x: torch.Tensor, to: int = 1) -> torch.Tensor:
        """See :meth:`translate`."""
        return self.translate(x, to)

    @torch.no_grad()
    def swap(self, x: torch.Tensor, to: int | torch.Tensor = 1, return_mask: bool = False):
        """Swap faces ``x`` ((N, C, H, W) in [0, 1]) into identity ``to`` (no gradients).

        Same contract as :meth:`genface.models.faceswap.FaceSwap.swap`: ``to`` is 1 (A -> B,
        G) or 0 (B -> A, F), an int or a (N,) tensor; returns [0, 1] faces, and
        ``(faces, None)`` with ``return_mask`` (CycleGAN learns no mask).
        """
        r = self.config.resolution
        if x.ndim != 4 or x.shape[1] != self.config.channels or tuple(x.shape[-2:]) != (r, r):
            raise ValueError(f"CycleGAN expects faces of shape (N, {self.config.channels}, {r}, {r}), "
                             f"got {tuple(x.shape)}")
        if isinstance(to, torch.Tensor) and to.ndim > 0:
            out = torch.empty_like(x)
            for t in to.unique().tolist():
                sel = to == t
                out[sel] = self.translate(x[sel] * 2 - 1, int(t)).add(1).div(2)
        else:
            out = self.translate(x * 2 - 1, int(to)).add(1).div(2)
        out = out.clamp(0, 1)
        return (out, None) if return_mask else out
