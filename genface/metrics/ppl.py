"""Perceptual path length (PPL) for the StyleGAN family, with offline distances.

Karras et al., "A Style-Based Generator Architecture for Generative Adversarial Networks",
CVPR 2019 (arXiv 1812.04948), section 4.2, eq. (2)-(3): for latent pairs, the distance
between images generated at interpolation points ``t`` and ``t + eps`` (``eps = 1e-4``),
divided by ``eps^2``; ``full`` draws ``t ~ U(0, 1)``, ``end`` uses ``t = 0``; in Z the
interpolation is spherical (slerp), in W linear. The 1% lowest and highest values are
discarded before averaging. Sampling agrees with NVlabs ``stylegan2-ada-pytorch``
``metrics/perceptual_path_length.py``.

The paper's distance is LPIPS (VGG16 weights), which cannot be downloaded here, so the
distance is stated in the name instead:

* ``pixel``: mean squared difference of the two images in ``[-1, 1]``;
* ``synthnet``: squared L2 distance of the unit-normalised features of genface's
  SyntheticFaces-trained CNN (:mod:`genface.metrics.synth_net`), the analogue of LPIPS'
  normalised feature differences.

Neither is comparable to published PPL numbers (PPL 197.2 for StyleGAN FFHQ is LPIPS).

The model interface: ``model.mapping(z) -> ws`` (``(N, w_dim)`` or ``(N, num_ws, w_dim)``)
and ``model.synthesis(ws, noise_mode="const") -> (N, 3, H, W)`` in ``[-1, 1]``, with the
latent size in ``model.z_dim`` or ``model.config.z_dim`` (or the ``z_dim=`` option).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from genface.metrics.registry import EvalContext, register_metric


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of the normalised ``a`` and ``b`` ``(N, D)`` at ``t`` ``(N, 1)``."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True)
    p = t * torch.acos(d.clamp(-1, 1))
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True)
    out = a * torch.cos(p) + c * torch.sin(p)
    return out / out.norm(dim=-1, keepdim=True)


def pixel_distance(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared difference ``(N,)``."""
    return (x0 - x1).pow(2).flatten(1).mean(dim=1)


def feature_distance(features: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
    """Distance ``||f(x0)/|f(x0)| - f(x1)/|f(x1)|||^2`` for a feature function ``f``."""

    def dist(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        f0, f1 = features(x0), features(x1)
        f0 = f0 / f0.norm(dim=1, keepdim=True).clamp_min(1e-12)
        f1 = f1 / f1.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return (f0 - f1).pow(2).sum(dim=1)

    return dist


def _z_dim(model: Any, z_dim: int | None) -> int:
    for v in (z_dim, getattr(model, "z_dim", None), getattr(getattr(model, "config", None), "z_dim", None)):
        if v is not None:
            return int(v)
    raise ValueError("PPL needs the latent size: give the model a z_dim attribute or pass z_dim=")


@torch.no_grad()
def path_lengths(
    model: Any, distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], num_samples: int,
    *, space: str = "w", sampling: str = "end", epsilon: float = 1e-4, z_dim: int | None = None,
    batch_size: int = 64, seed: int = 0, device: torch.device | str = "cpu",
) -> np.ndarray:
    """Per-sample path lengths ``d(G(l(t)), G(l(t + eps))) / eps^2`` ``(num_samples,)``.

    Args:
        model: object with ``mapping(z)`` and ``synthesis(ws, noise_mode="const")``.
        distance: per-image distance of two image batches.
        num_samples: latent pairs.
        space: ``"w"`` (lerp of mapped latents) or ``"z"`` (slerp of latents, then mapping).
        sampling: ``"full"`` (``t ~ U(0, 1)``) or ``"end"`` (``t = 0``).
        epsilon: step along the path (1e-4 in the paper).
        z_dim: latent size; ``None`` = read from the model.
        batch_size: latent pairs per batch.
        seed: seed of latents and ``t``.
        device: where latents are created.
    """
    if space not in ("w", "z") or sampling not in ("full", "end"):
        raise ValueError(f"space must be 'w' or 'z', sampling 'full' or 'end'; got {space!r}, {sampling!r}")
    zd = _z_dim(model, z_dim)
    g = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        z0, z1 = torch.randn(2, n, zd, generator=g).to(device)
        t = (torch.rand(n, 1, generator=g) * (1.0 if sampling == "full" else 0.0)).to(device)
        if space == "z":
            zt0, zt1 = slerp(z0, z1, t), slerp(z0, z1, t + epsilon)
            ws = model.mapping(torch.cat([zt0, zt1]))
        else:
            w0, w1 = model.mapping(torch.cat([z0, z1])).chunk(2)
            tt = t.view(n, *([1] * (w0.ndim - 1)))
            ws = torch.cat([w0.lerp(w1, tt), w0.lerp(w1, tt + epsilon)])
        img = model.synthesis(ws, noise_mode="const")
        if img.ndim != 4 or img.shape[0] != 2 * n:
            raise ValueError(f"synthesis returned {tuple(img.shape)}, expected ({2 * n}, C, H, W)")
        x0, x1 = img.float().chunk(2)
        out.append((distance(x0, x1) / epsilon**2).double().cpu())
    return torch.cat(out).numpy()


def ppl_from_lengths(dist: np.ndarray) -> float:
    """Mean of the path lengths between the 1st and 99th percentiles (inclusive), as NVlabs."""
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    return float(np.extract(np.logical_and(dist >= lo, dist <= hi), dist).mean())


def _ppl(ctx: EvalContext, num_samples: int, space: str, sampling: str, dist_name: str, name: str,
         z_dim: int | None = None, epsilon: float = 1e-4) -> dict[str, float]:
    if dist_name == "pixel":
        distance = pixel_distance
    else:
        from genface.metrics.synth_net import get_synth_net

        probe = ctx.model.synthesis(ctx.model.mapping(torch.randn(1, _z_dim(ctx.model, z_dim), device=ctx.device)),
                                    noise_mode="const")
        net = get_synth_net(probe.shape[-1], ctx.cache_dir).to(ctx.device)
        distance = feature_distance(net.features)
    lengths = path_lengths(ctx.model, distance, num_samples, space=space, sampling=sampling,
                           epsilon=epsilon, z_dim=z_dim, batch_size=ctx.batch_size, seed=ctx.seed,
                           device=ctx.device)
    return {name: ppl_from_lengths(lengths)}


for _dist in ("pixel", "synthnet"):
    for _space in ("w", "z"):
        for _sampling in ("end", "full"):
            _name = f"ppl10k_{_space}{_sampling}_{_dist}"
            register_metric(
                _name,
                needs=("stylegan_mapping",),
                description=f"perceptual path length in {_space.upper()}, t {'= 0' if _sampling == 'end' else '~ U(0,1)'}"
                f", eps 1e-4, 10k samples, {_dist} distance (not LPIPS)",
                paper="Karras et al. 2019, A Style-Based Generator Architecture (arXiv 1812.04948), sec. 4.2",
                reference_impl="NVlabs stylegan2-ada-pytorch metrics/perceptual_path_length.py (sampling)",
            )(functools.partial(_ppl, num_samples=10_000, space=_space, sampling=_sampling,
                                dist_name=_dist, name=_name))
