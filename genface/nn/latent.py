"""Latent-space utilities shared by the ProGAN / StyleGAN generators and their notebook API.

* :func:`slerp`: spherical interpolation, the right path between Gaussian ``z`` samples
  (White, "Sampling generative networks", arXiv 1609.04468); StyleGAN's PPL in Z uses it.
* :func:`lerp`: linear interpolation, used in W (StyleGAN §4.2: W is not Gaussian).
* :func:`mix_ws`: style mixing (StyleGAN §3.1): rows ``< crossover`` from one latent, the
  rest from another.

The notebook API built on them (``GeneratorAPI``, ``GANWrapperAPI``) is the models' and lives
in :mod:`genface.models.api`.
"""

from __future__ import annotations

import torch

__all__ = ["slerp", "lerp", "mix_ws", "INTERPOLATION_SPACES"]

#: Spaces :meth:`GeneratorAPI.interpolate` walks in.
INTERPOLATION_SPACES = ("z", "w")


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """``a + t (b - a)``."""
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation along the last dimension (falls back to lerp for parallel vectors).

    Args:
        a, b: ``(..., D)`` end points.
        t: fraction in [0, 1], a float or a tensor broadcastable to ``(..., 1)``.
    """
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    if t.ndim == 0 or t.shape[-1] != 1:
        t = t[..., None]
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.arccos((an * bn).sum(-1, keepdim=True).clamp(-1 + eps, 1 - eps))
    so = torch.sin(omega)
    out = (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b
    return torch.where(so.abs() < 1e-6, lerp(a, b, t), out)


def mix_ws(ws1: torch.Tensor, ws2: torch.Tensor, crossover: int) -> torch.Tensor:
    """Style mixing: rows ``[:crossover]`` of ``ws1`` and ``[crossover:]`` of ``ws2`` (``(N, num_ws, w_dim)``)."""
    if ws1.shape != ws2.shape or ws1.ndim != 3:
        raise ValueError(f"mix_ws needs two (N, num_ws, w_dim) tensors, got {tuple(ws1.shape)}, {tuple(ws2.shape)}")
    if not 0 <= crossover <= ws1.shape[1]:
        raise ValueError(f"crossover must be in [0, {ws1.shape[1]}], got {crossover}")
    out = ws1.clone()
    out[:, crossover:] = ws2[:, crossover:]
    return out


def __getattr__(name: str):
    """``GeneratorAPI`` and ``GANWrapperAPI`` moved to :mod:`genface.models.api`; imported on
    first use so that ``genface.nn`` does not import ``genface.models`` (models sit above nn)."""
    if name in ("GeneratorAPI", "GANWrapperAPI"):
        from genface.models import api

        return getattr(api, name)
    raise AttributeError(f"module 'genface.nn.latent' has no attribute {name!r}")
