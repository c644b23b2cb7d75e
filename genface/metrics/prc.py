"""Improved precision and recall (k-NN manifolds).

Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing Generative Models",
NeurIPS 2019 (arXiv 1904.06991): each set's manifold is the union of balls around its
features whose radius is the distance to the k-th nearest neighbour (k = 3) within the set;
precision = share of generated features inside the real manifold, recall = share of real
features inside the generated manifold. Agrees with NVlabs ``stylegan2-ada-pytorch``
``metrics/precision_recall.py`` (``pr50k3_full``: Euclidean distances on Inception pool3,
``kthvalue(k + 1)`` so that a point is not its own neighbour).
"""

from __future__ import annotations

import numpy as np
import torch

from genface.metrics.common import inception_pair, register_inception_metrics
from genface.metrics.registry import EvalContext


def _knn_radii(x: torch.Tensor, k: int, batch: int) -> torch.Tensor:
    radii = []
    for rows in x.split(batch):
        radii.append(torch.cdist(rows, x).kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def _coverage(query: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, batch: int) -> float:
    inside = []
    for rows in query.split(batch):
        inside.append((torch.cdist(rows, support) <= radii[None, :]).any(dim=1))
    return float(torch.cat(inside).float().mean())


def precision_recall(real: np.ndarray, gen: np.ndarray, k: int = 3, batch: int = 4096) -> tuple[float, float]:
    """``(precision, recall)`` of ``gen`` ``(M, D)`` against ``real`` ``(N, D)``.

    Args:
        real, gen: feature sets.
        k: neighbourhood size (3 in the paper).
        batch: rows per distance block (memory only).
    """
    r = torch.as_tensor(np.asarray(real), dtype=torch.float64)
    g = torch.as_tensor(np.asarray(gen), dtype=torch.float64)
    if r.ndim != 2 or g.ndim != 2 or r.shape[1] != g.shape[1]:
        raise ValueError(f"features must be (N, D) and (M, D), got {tuple(r.shape)}, {tuple(g.shape)}")
    if min(r.shape[0], g.shape[0]) <= k:
        raise ValueError(f"need more than k={k} features per set")
    precision = _coverage(g, r, _knn_radii(r, k, batch), batch)
    recall = _coverage(r, g, _knn_radii(g, k, batch), batch)
    return precision, recall


def _pr(ctx: EvalContext, num_gen: int, name: str, inception_weights: str | None = None,
        k: int = 3) -> dict[str, float]:
    real, gen = inception_pair(ctx, num_gen, inception_weights)
    p, r = precision_recall(real, gen, k=k)
    return {f"{name}/precision": p, f"{name}/recall": r, f"{name}/num_reference": len(real)}


register_inception_metrics(
    _pr, "pr{k}k3_full",
    description="precision/recall (k=3), {k}k generated vs all reference images, Inception pool3",
    paper="Kynkaanniemi et al. 2019, Improved Precision and Recall (arXiv 1904.06991)",
    reference_impl="NVlabs stylegan2-ada-pytorch metrics/precision_recall.py (pr50k3_full)",
)
