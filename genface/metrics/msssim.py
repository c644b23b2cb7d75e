"""MS-SSIM diversity: mean multi-scale SSIM between random pairs of generated images.

MS-SSIM: Wang, Simoncelli & Bovik, "Multi-scale structural similarity for image quality
assessment", Asilomar 2003. Used as a diversity score by Odena et al. 2017 (AC-GAN,
arXiv 1610.09585) and by Karras et al. 2018 (ProGAN, arXiv 1710.10196, Table 1): lower means
more varied samples; compare with the same score on pairs of real images.

Agrees with ``tkarras/progressive_growing_of_gans`` ``metrics/ms_ssim.py`` (from TensorFlow's
``msssim.py``): 8-bit images (max value 255), 5 scales with weights
(0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 11x11 Gaussian window sigma 1.5 over the valid
region, 2x2 average downsampling, SSIM and contrast terms clipped at 0. Small images keep all
5 scales: as in that code, at scales smaller than the window the window shrinks to the image
size (and sigma with it). torchmetrics' ``multiscale_structural_similarity_index_measure``
refuses 5 scales below 176 px and averages the SSIM term over reflection-padded borders, so
it differs slightly (about 1e-3) even on large images.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from genface.metrics.common import iter_generated, iter_reference, reference_subset
from genface.metrics.registry import EvalContext, register_metric

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _gauss_window(size: int, sigma: float) -> torch.Tensor:
    # MATLAB fspecial('gaussian'), including the half-pixel offset for even sizes.
    radius = size // 2
    offset = 0.5 if size % 2 == 0 else 0.0
    start, stop = -radius + offset, radius + 1 - (1 if size % 2 == 0 else 0) + offset
    x = torch.arange(start, stop, 1.0, dtype=torch.float64)
    assert len(x) == size
    g = torch.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2.0 * sigma**2))
    return g / g.sum()


def _ssim_cs(a: torch.Tensor, b: torch.Tensor, max_val: float, filter_size: int, filter_sigma: float,
             k1: float, k2: float) -> tuple[torch.Tensor, torch.Tensor]:
    _, c, h, w = a.shape
    size = min(filter_size, h, w)
    sigma = size * filter_sigma / filter_size
    win = _gauss_window(size, sigma).to(a)[None, None].expand(c, 1, size, size)

    def blur(x):
        return F.conv2d(x, win, groups=c)

    mu1, mu2 = blur(a), blur(b)
    s11 = blur(a * a) - mu1 * mu1
    s22 = blur(b * b) - mu2 * mu2
    s12 = blur(a * b) - mu1 * mu2
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    v1, v2 = 2.0 * s12 + c2, s11 + s22 + c2
    ssim = (((2.0 * mu1 * mu2 + c1) * v1) / ((mu1 * mu1 + mu2 * mu2 + c1) * v2)).mean(dim=(1, 2, 3))
    cs = (v1 / v2).mean(dim=(1, 2, 3))
    return ssim, cs


def ms_ssim(
    img1: torch.Tensor, img2: torch.Tensor, max_val: float = 255.0, filter_size: int = 11,
    filter_sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
) -> torch.Tensor:
    """Per-pair MS-SSIM ``(N,)`` of image batches ``(N, C, H, W)`` with values in ``[0, max_val]``.

    Args:
        img1, img2: the pairs (``uint8`` is converted; floats are used as given).
        max_val: dynamic range (255 for 8-bit images).
        filter_size: Gaussian window side; shrinks to the image at small scales.
        filter_sigma: window sigma (scaled with the window).
        k1, k2: SSIM stabilisers.
        weights: per-scale exponents; their number is the number of scales.
    """
    if img1.shape != img2.shape or img1.ndim != 4:
        raise ValueError(f"expected two equal (N, C, H, W) batches, got {tuple(img1.shape)}, {tuple(img2.shape)}")
    if min(img1.shape[2:]) < 2 ** (len(weights) - 1):
        raise ValueError(f"{len(weights)} scales need images of at least {2 ** (len(weights) - 1)} px")
    a, b = img1.float(), img2.float()  # float32 like the reference code (float64 convs are slow)
    mssim, mcs = [], []
    for _ in weights:
        ssim, cs = _ssim_cs(a, b, max_val, filter_size, filter_sigma, k1, k2)
        mssim.append(ssim)
        mcs.append(cs)
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    mssim_t = torch.stack(mssim).clamp_min(0)
    mcs_t = torch.stack(mcs).clamp_min(0)
    w = torch.tensor(weights, dtype=torch.float64)[:, None]
    mssim_t, mcs_t = mssim_t.double(), mcs_t.double()
    return (mcs_t[:-1] ** w[:-1]).prod(dim=0) * mssim_t[-1] ** w[-1]


def mean_pair_ms_ssim(batches, num_pairs: int) -> float:
    """Mean MS-SSIM of consecutive pairs (images 0-1, 2-3, ...) over ``uint8`` batches of even size."""
    total, count = 0.0, 0
    for batch in batches:
        if batch.shape[0] % 2:
            raise ValueError("batches must hold an even number of images")
        vals = ms_ssim(batch[0::2], batch[1::2])
        total += float(vals.sum())
        count += vals.numel()
        if count >= num_pairs:
            break
    return total / count


def _msssim(ctx: EvalContext, num_pairs: int, name: str) -> dict[str, float]:
    bs = ctx.batch_size + ctx.batch_size % 2
    out = {name: mean_pair_ms_ssim(iter_generated(ctx.generator_fn, 2 * num_pairs, ctx.seed, bs), num_pairs)}
    if ctx.reference is not None:
        ref = reference_subset(ctx.reference, 2 * num_pairs, ctx.seed)
        n = math.floor(len(ref) / 2) if not isinstance(ref, torch.Tensor) else ref.shape[0] // 2
        out[f"{name}/reference"] = mean_pair_ms_ssim(iter_reference(ref, bs, max_items=2 * n), n)
    return out


for _k in (10, 1):
    _name = f"msssim_pairs{_k}k"
    register_metric(
        _name,
        needs=("generator",),
        description=f"mean MS-SSIM of {_k}k random generated pairs (lower = more diverse); with a "
        "reference, the same on random real pairs under /reference",
        paper="Wang et al. 2003 (MS-SSIM); Odena et al. 2017 and Karras et al. 2018 (as diversity)",
        reference_impl="tkarras/progressive_growing_of_gans metrics/ms_ssim.py",
    )(functools.partial(_msssim, num_pairs=_k * 1000, name=_name))
