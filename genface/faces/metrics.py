"""Face-swap metrics: kept at this import path, implemented once in :mod:`genface.metrics`.

* :mod:`genface.metrics.swap` holds every swap metric (registered as ``swap_id_dlib``,
  ``swap_pose_dlib``, ``swap_temporal``, ``swap_synth_factors``; need ``"swapper"``) and the
  helpers re-exported here: :func:`landmark_error`, :func:`identity_distances`,
  :func:`temporal_consistency` and :class:`SwapFaceJudge` (dlib detection, 68 landmarks and
  descriptors of small crops).
* :func:`identity_retrieval_top1` is :mod:`genface.metrics.face_embed`'s.
* :func:`reconstruction_metrics`: mean MAE, PSNR and SSIM of swaps against a ground truth,
  the batch means of :func:`genface.metrics.reconstruction.reconstruction_errors`.
"""

from __future__ import annotations

import torch

from genface.metrics.face_embed import identity_retrieval_top1
from genface.metrics.swap import (
    SwapFaceJudge,
    identity_distances,
    landmark_error,
    temporal_consistency,
)

__all__ = ["reconstruction_metrics", "identity_retrieval_top1", "landmark_error", "identity_distances",
           "temporal_consistency", "SwapFaceJudge"]


def reconstruction_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Mean MAE, PSNR (dB) and SSIM of ``pred`` against ``target`` (B, 3, H, W) in [0, 1]."""
    from genface.metrics.reconstruction import reconstruction_errors

    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"pred and target must be equal (B, C, H, W), got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    errs = reconstruction_errors(target.float().clamp(0, 1), pred.float().clamp(0, 1))
    return {k: float(v.float().mean()) for k, v in errs.items()}
