"""Sliced Wasserstein distance (SWD) on Laplacian-pyramid patches.

Karras et al., "Progressive Growing of GANs for Improved Quality, Stability, and Variation",
ICLR 2018 (arXiv 1710.10196), section 5 / appendix D. Agrees with
``tkarras/progressive_growing_of_gans`` ``metrics/sliced_wasserstein.py``: a Laplacian pyramid
(cv2.pyrDown 5x5 binomial filter, mirror borders) from full resolution down to 16x16;
128 random 7x7x3 neighbourhoods per image and level; descriptors normalised per colour channel
over each set; 4 repeats of 128 random unit directions (512 in all), the 1-D Wasserstein-1
distance of the sorted projections averaged; reported x 1e3 per level and averaged.
Needs no pretrained network. Lower is better.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from genface.metrics.common import (
    check_resolution_match,
    iter_generated,
    iter_reference,
    reference_subset,
)
from genface.metrics.registry import EvalContext, register_metric

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
_GAUSS = torch.outer(_BINOMIAL, _BINOMIAL) / 256.0


def _filter(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    x = F.pad(x, (2, 2, 2, 2), mode="reflect")  # == scipy.ndimage mode="mirror"
    return F.conv2d(x, kernel.to(x)[None, None].expand(c, 1, 5, 5), groups=c)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """5x5 binomial blur then drop every other pixel (cv2.pyrDown)."""
    return _filter(x, _GAUSS)[:, :, ::2, ::2]


def pyr_up(x: torch.Tensor) -> torch.Tensor:
    """Zero-insert upsampling then 4 x the 5x5 binomial blur (cv2.pyrUp)."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    return _filter(up, _GAUSS * 4.0)


def laplacian_pyramid(images: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """Levels of the Laplacian pyramid of float images, finest first, coarsest = Gaussian level."""
    pyramid = [images if images.is_floating_point() else images.float()]
    for _ in range(1, num_levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1])
    return pyramid


def patch_descriptors(level: torch.Tensor, nhood_size: int, per_image: int, generator: torch.Generator) -> torch.Tensor:
    """``per_image`` random ``nhood_size`` x ``nhood_size`` x 3 patches per image ``(N*per_image, 3, s, s)``."""
    n, c, h, w = level.shape
    r = nhood_size // 2
    ys = torch.randint(r, h - r, (n, per_image), generator=generator)
    xs = torch.randint(r, w - r, (n, per_image), generator=generator)
    off = torch.arange(-r, r + 1)
    rows = (ys[..., None] + off)[..., :, None]  # (n, p, s, 1)
    cols = (xs[..., None] + off)[..., None, :]  # (n, p, 1, s)
    img = torch.arange(n)[:, None, None, None]
    patches = level.permute(0, 2, 3, 1)[img, rows, cols]  # (n, p, s, s, c)
    return patches.reshape(n * per_image, nhood_size, nhood_size, c).permute(0, 3, 1, 2)


def finalize_descriptors(desc: torch.Tensor) -> torch.Tensor:
    """Normalise each colour channel to zero mean, unit std over the set; flatten to ``(N, 3*s*s)``."""
    desc = desc - desc.mean(dim=(0, 2, 3), keepdim=True)
    desc = desc / desc.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
    return desc.reshape(desc.shape[0], -1)


def sliced_wasserstein(
    a: torch.Tensor, b: torch.Tensor, dir_repeats: int = 4, dirs_per_repeat: int = 128,
    generator: torch.Generator | None = None, chunk: int = 32,
) -> float:
    """Mean 1-D Wasserstein-1 distance between ``a`` and ``b`` ``(N, D)`` along random directions.

    Args:
        a, b: descriptor sets of equal size.
        dir_repeats: independent draws of directions (4 in ProGAN).
        dirs_per_repeat: unit directions per draw (128 in ProGAN).
        generator: RNG for the directions; ``None`` = torch's global RNG.
        chunk: directions projected at once (memory only).
    """
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"descriptor sets must be equal (N, D), got {tuple(a.shape)}, {tuple(b.shape)}")
    results = []
    for _ in range(dir_repeats):
        dirs = torch.randn(a.shape[1], dirs_per_repeat, generator=generator)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        total = 0.0
        for d in dirs.to(a).split(chunk, dim=1):
            pa = torch.sort(a @ d, dim=0).values
            pb = torch.sort(b @ d, dim=0).values
            total += float((pa - pb).abs().sum())
        results.append(total / (a.shape[0] * dirs_per_repeat))
    return float(np.mean(results))


def swd_levels(
    real: torch.Tensor, fake: torch.Tensor, *, nhood_size: int = 7, nhoods_per_image: int = 128,
    dir_repeats: int = 4, dirs_per_repeat: int = 128, min_resolution: int = 16, seed: int = 0,
    batch_size: int = 256,
) -> dict[int, float]:
    """SWD x 1e3 per pyramid level between two ``uint8`` image sets ``(N, 3, H, W)``.

    Args:
        real, fake: equally many images of equal size (values 0..255 as in ProGAN).
        nhood_size: patch side (7).
        nhoods_per_image: patches per image and level (128).
        dir_repeats, dirs_per_repeat: see :func:`sliced_wasserstein`.
        min_resolution: coarsest level (16).
        seed: seed of patch positions and directions.
        batch_size: images per pyramid batch (memory only).

    Returns:
        ``{resolution: swd_x1e3}``, finest level first.
    """
    check_resolution_match(fake, real, "SWD")
    if real.shape[0] != fake.shape[0]:
        raise ValueError(f"SWD needs equally many images, got {real.shape[0]} and {fake.shape[0]}")
    resolutions = []
    res = real.shape[2]
    while res >= min_resolution:
        resolutions.append(res)
        res //= 2
    if not resolutions:
        raise ValueError(f"images of {real.shape[2]} px are below min_resolution={min_resolution}")
    g = torch.Generator().manual_seed(seed)
    out = {}
    for lod, res in enumerate(resolutions):
        descs = []
        for images in (real, fake):
            parts = []
            for batch in images.split(batch_size):
                level = laplacian_pyramid(batch.float(), lod + 1)[lod]
                parts.append(patch_descriptors(level, nhood_size, nhoods_per_image, g))
            descs.append(finalize_descriptors(torch.cat(parts)))
        out[res] = 1e3 * sliced_wasserstein(descs[0], descs[1], dir_repeats, dirs_per_repeat, g)
    return out


def _swd(ctx: EvalContext, num: int, name: str) -> dict[str, float]:
    real = torch.cat(list(iter_reference(reference_subset(ctx.reference, num, ctx.seed), ctx.batch_size)))
    if real.shape[0] < num:
        raise ValueError(f"{name} needs {num} reference images, the reference has {real.shape[0]}")
    fake = torch.cat(list(iter_generated(ctx.generator_fn, num, ctx.seed, ctx.batch_size)))
    levels = swd_levels(real, fake, seed=ctx.seed)
    out = {f"{name}/{res}px": v for res, v in levels.items()}
    out[name] = float(np.mean(list(levels.values())))
    return out


for _num, _name in ((16384, "swd16k"), (2048, "swd2k")):
    register_metric(
        _name,
        needs=("generator", "reference"),
        description=f"sliced Wasserstein distance x1e3, {_num} generated vs {_num} random reference "
        "images, 7x7 Laplacian-pyramid patches down to 16 px; value = average over levels",
        paper="Karras et al. 2018, Progressive Growing of GANs (arXiv 1710.10196)",
        reference_impl="tkarras/progressive_growing_of_gans metrics/sliced_wasserstein.py",
    )(functools.partial(_swd, num=_num, name=_name))
