"""Reconstruction quality of autoencoders: MAE, PSNR and SSIM between ``x`` and ``recon_fn(x)``.

* MAE: mean absolute error on ``[0, 1]`` pixels (the FaceSwap "original" model's training
  loss, deepfakes/faceswap).
* PSNR: ``10 log10(1 / MSE)`` per image on ``[0, 1]``, averaged over images.
* SSIM: Wang et al., "Image quality assessment: from error visibility to structural
  similarity", IEEE TIP 2004; 11x11 Gaussian window, sigma 1.5, k1 0.01, k2 0.03, data range 1,
  computed by torchmetrics' ``structural_similarity_index_measure`` (its convention: the SSIM
  map is averaged over the whole image with reflection-padded borders).

Both images are quantised to 8 bits first (as if saved to PNG), so numbers match what a
user measuring saved files gets.
"""

from __future__ import annotations

import functools

import torch

from genface.metrics.common import (
    check_resolution_match,
    iter_reference,
    reference_subset,
    to_float,
    to_uint8,
)
from genface.metrics.registry import EvalContext, register_metric


def reconstruction_errors(x: torch.Tensor, x_hat: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image ``mae``, ``psnr`` (dB) and ``ssim`` of images in ``[0, 1]`` ``(N, 3, H, W)``."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    check_resolution_match(x_hat, x, "reconstruction")
    if x.shape != x_hat.shape:
        raise ValueError(f"x {tuple(x.shape)} and x_hat {tuple(x_hat.shape)} differ")
    ssim = structural_similarity_index_measure(x_hat.float(), x.float(), data_range=1.0, reduction="none")
    x, x_hat = x.double(), x_hat.double()
    mse = (x - x_hat).pow(2).mean(dim=(1, 2, 3))
    return {
        "mae": (x - x_hat).abs().mean(dim=(1, 2, 3)),
        "psnr": 10 * torch.log10(1.0 / mse.clamp_min(1e-12)),
        "ssim": ssim.double(),
    }


def _recon(ctx: EvalContext, num: int | None, name: str) -> dict[str, float]:
    ref = ctx.reference if num is None else reference_subset(ctx.reference, num, ctx.seed)
    sums: dict[str, float] = {}
    count = 0
    for batch in iter_reference(ref, ctx.batch_size):
        x = to_float(batch).to(ctx.device)
        with torch.no_grad():
            x_hat = ctx.recon_fn(x)
        errs = reconstruction_errors((to_float(batch) + 1) / 2, (to_float(to_uint8(x_hat.cpu())) + 1) / 2)
        for k, v in errs.items():
            sums[k] = sums.get(k, 0.0) + float(v.sum())
        count += batch.shape[0]
    return {f"{name}/{k}": v / count for k, v in sums.items()} | {f"{name}/num_images": count}


for _num, _name in ((None, "recon_full"), (1000, "recon1k")):
    register_metric(
        _name,
        needs=("autoencoder", "reference"),
        description="reconstruction MAE / PSNR (dB) / SSIM on [0,1] pixels over "
        + ("all reference images" if _num is None else f"{_num} random reference images"),
        paper="Wang et al. 2004 (SSIM)",
        reference_impl="torchmetrics structural_similarity_index_measure",
    )(functools.partial(_recon, num=_num, name=_name))
