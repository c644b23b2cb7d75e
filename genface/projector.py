"""Projection of an image into a StyleGAN / StyleGAN2 latent space (image -> W).

Karras et al. (StyleGAN2, §5 and NVlabs ``projector.py``) optimise ``w`` from ``w_avg`` to
reproduce a target image, with LPIPS on VGG16 features as the distance. genface runs
offline and ships no VGG weights, so the distance here is

    d(x, y) = mean((x - y)^2) + lambda * (1 - MS-SSIM(x, y))

on images in [0, 1] (MS-SSIM: Wang, Simoncelli, Bovik 2003, the 5-scale implementation of
:func:`genface.metrics.msssim.ms_ssim`; dropped automatically below 16 px); it needs no
pretrained network. As in NVlabs' projector, the search starts at ``w_avg``, optimises
with Adam, adds noise to ``w`` that decays during the first part of the run, and keeps the
noise inputs constant (``noise_mode="const"``). ``space="w"`` optimises one ``w`` for all
layers; ``"w+"`` one per layer (closer reconstructions, less editable latents).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["ProjectionResult", "project", "image_distance"]


def image_distance(x: torch.Tensor, y: torch.Tensor, msssim_weight: float = 1.0) -> torch.Tensor:
    """``mean((x - y)^2) + msssim_weight * (1 - MS-SSIM)`` per image ``(N,)``, images in [0, 1]."""
    from genface.metrics.msssim import MS_SSIM_WEIGHTS, ms_ssim

    d = (x - y).pow(2).flatten(1).mean(1)
    scales = len(MS_SSIM_WEIGHTS)
    while scales > 1 and min(x.shape[-2:]) < 2 ** (scales - 1) * 2:
        scales -= 1
    if msssim_weight > 0 and scales >= 2:
        w = MS_SSIM_WEIGHTS[-scales:]
        d = d + msssim_weight * (1 - ms_ssim(x, y, max_val=1.0, weights=tuple(v / sum(w) for v in w),
                                             filter_size=min(11, min(x.shape[-2:]) // 2 ** (scales - 1) or 1))
                                 .to(d.dtype))
    return d


@dataclass
class ProjectionResult:
    """What :func:`project` found.

    Attributes:
        ws: ``(1, num_ws, w_dim)`` latents (all rows equal for ``space="w"``).
        image: the reconstruction ``(3, H, W)`` in [-1, 1].
        distances: the distance at every step.
        psnr: PSNR (dB) of the reconstruction against the target, on [0, 1] pixels.
    """

    ws: torch.Tensor
    image: torch.Tensor
    distances: list[float]
    psnr: float


def project(G, target: torch.Tensor, steps: int = 300, space: str = "w", lr: float = 0.05,
            msssim_weight: float = 1.0, noise_ramp: float = 0.25, initial_noise: float = 0.05,
            w_avg_samples: int = 1000, seed: int = 0) -> ProjectionResult:
    """Find latents whose image is closest to ``target`` under :func:`image_distance`.

    Args:
        G: a StyleGAN / StyleGAN2 generator or pair (``mapping``, ``synthesis``, ``z_dim``).
        target: ``(3, H, W)`` in [-1, 1] at the generator's resolution.
        steps: Adam steps.
        space: ``"w"`` (one w for every layer) or ``"w+"`` (one per layer).
        lr: Adam learning rate.
        msssim_weight: weight of ``1 - MS-SSIM`` in the distance (0 = pixel MSE only).
        noise_ramp: fraction of the steps over which the noise added to ``w`` decays to 0.
        initial_noise: that noise's initial scale, relative to the spread of W.
        w_avg_samples: z samples used to estimate ``w_avg`` and the spread of W.
        seed: seeds those samples and the added noise.
    """
    if space not in ("w", "w+"):
        raise ValueError(f"space must be 'w' or 'w+', got {space!r}")
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        z = torch.randn(w_avg_samples, G.z_dim, generator=gen).to(device)
        ws_all = G.mapping(z, update_w_avg=False)  # (n, num_ws, w_dim)
        w_avg = ws_all[:, :1].mean(0, keepdim=True)  # (1, 1, w_dim)
        w_std = (ws_all[:, 0] - w_avg[:, 0]).pow(2).sum(1).mean().sqrt().item()
    num_ws = ws_all.shape[1]
    w = (w_avg if space == "w" else w_avg.repeat(1, num_ws, 1)).clone().requires_grad_(True)
    target01 = ((target.to(device)[None] + 1) / 2).clamp(0, 1)
    opt = torch.optim.Adam([w], lr=lr, betas=(0.9, 0.999))
    distances: list[float] = []
    was = G.training
    G.eval()
    try:
        for step in range(steps):
            t = step / max(steps - 1, 1)
            scale = w_std * initial_noise * max(0.0, 1 - t / noise_ramp) ** 2 if noise_ramp > 0 else 0.0
            wn = w + torch.randn(w.shape, generator=gen).to(device) * scale
            ws = wn.repeat(1, num_ws, 1) if space == "w" else wn
            img01 = (G.synthesis(ws, noise_mode="const") + 1) / 2
            loss = image_distance(img01, target01, msssim_weight).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            distances.append(loss.item())
        with torch.no_grad():
            ws = (w.repeat(1, num_ws, 1) if space == "w" else w).detach()
            image = G.synthesis(ws, noise_mode="const").clamp(-1, 1)[0]
            mse = ((image + 1) / 2 - target01[0]).pow(2).mean().item()
    finally:
        G.train(was)
    psnr = float("inf") if mse == 0 else -10 * torch.log10(torch.tensor(mse)).item()
    return ProjectionResult(ws=ws, image=image, distances=distances, psnr=psnr)
