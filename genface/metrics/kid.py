"""Kernel Inception Distance (KID): unbiased MMD^2 with a cubic polynomial kernel.

Bińkowski et al., "Demystifying MMD GANs", ICLR 2018 (arXiv 1801.01401): kernel
``k(x, y) = (x.y / d + 1)^3`` on Inception-v3 pool features, the unbiased MMD^2 estimator
averaged over random subsets. Agrees with NVlabs ``stylegan2-ada-pytorch``
``metrics/kernel_inception_distance.py`` (100 subsets of at most 1000 features, subsets drawn
without replacement) and torch-fidelity's ``kid_subsets`` defaults. Reported unscaled
(papers often print KID x 1e3).
"""

from __future__ import annotations

import numpy as np

from genface.metrics.common import inception_pair, register_inception_metrics
from genface.metrics.registry import EvalContext


def kernel_distance(
    real: np.ndarray,
    gen: np.ndarray,
    num_subsets: int = 100,
    max_subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID between feature sets ``real`` ``(N, D)`` and ``gen`` ``(M, D)``.

    Args:
        real, gen: features.
        num_subsets: random subsets averaged.
        max_subset_size: subset size ``m = min(N, M, max_subset_size)``.
        seed: seed of the subset draws.

    Returns:
        ``(mean, std)`` of the per-subset unbiased MMD^2 estimates.
    """
    real = np.asarray(real, dtype=np.float64)
    gen = np.asarray(gen, dtype=np.float64)
    if real.ndim != 2 or gen.ndim != 2 or real.shape[1] != gen.shape[1]:
        raise ValueError(f"features must be (N, D) and (M, D), got {real.shape}, {gen.shape}")
    d = real.shape[1]
    m = min(real.shape[0], gen.shape[0], max_subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 features per set")
    rng = np.random.default_rng(seed)
    vals = np.empty(num_subsets)
    for i in range(num_subsets):
        x = gen[rng.choice(gen.shape[0], m, replace=False)]
        y = real[rng.choice(real.shape[0], m, replace=False)]
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        vals[i] = ((a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m) / m
    return float(vals.mean()), float(vals.std())


def _kid(ctx: EvalContext, num_gen: int, name: str, inception_weights: str | None = None,
         num_subsets: int = 100, max_subset_size: int = 1000) -> dict[str, float]:
    real, gen = inception_pair(ctx, num_gen, inception_weights)
    mean, std = kernel_distance(real, gen, num_subsets, max_subset_size, seed=ctx.seed)
    return {name: mean, f"{name}/std": std, f"{name}/num_reference": len(real)}


register_inception_metrics(
    _kid, "kid{k}k_full",
    description="KID (unscaled), {k}k generated vs all reference images, Inception-v3 pool3, 100 subsets of 1000",
    paper="Binkowski et al. 2018, Demystifying MMD GANs (arXiv 1801.01401)",
    reference_impl="NVlabs stylegan2-ada-pytorch metrics/kernel_inception_distance.py; torch-fidelity kid",
)
