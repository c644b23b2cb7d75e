"""Inception Score (IS).

Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016 (arXiv 1606.03498):
``IS = exp(E_x KL(p(y|x) || p(y)))`` over the 1008 logits of the TF 2015-12-05 Inception,
averaged over 10 splits. Agrees with torch-fidelity's ``isc`` (``logits_unbiased``, 10 splits,
no shuffling) and NVlabs ``stylegan2-ada-pytorch`` ``is50k``.
"""

from __future__ import annotations

import numpy as np
import scipy.special

from genface.metrics.common import inception_pair, register_inception_metrics
from genface.metrics.registry import EvalContext


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """IS from logits ``(N, C)``.

    Args:
        logits: classifier logits (softmax is taken here).
        splits: the images are cut into this many consecutive parts; IS is computed on each.

    Returns:
        ``(mean, std)`` over the splits.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[0] < splits:
        raise ValueError(f"logits must be (N >= splits={splits}, C), got {logits.shape}")
    log_p = scipy.special.log_softmax(logits, axis=1)
    p = np.exp(log_p)
    scores = []
    for part_p, part_log_p in zip(np.array_split(p, splits), np.array_split(log_p, splits)):
        log_py = np.log(part_p.mean(axis=0, keepdims=True))
        kl = (part_p * (part_log_p - log_py)).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def _is(ctx: EvalContext, num_gen: int, name: str, inception_weights: str | None = None,
        splits: int = 10) -> dict[str, float]:
    _, logits = inception_pair(ctx, num_gen, inception_weights, layer="logits", reference=False)
    mean, std = inception_score(logits, splits)
    return {name: mean, f"{name}/std": std}


register_inception_metrics(
    _is, "is{k}k", needs=("generator",),
    description="Inception Score, {k}k generated images, 10 splits, TF 2015-12-05 Inception logits",
    paper="Salimans et al. 2016, Improved Techniques for Training GANs (arXiv 1606.03498)",
    reference_impl="torch-fidelity isc; NVlabs stylegan2-ada-pytorch is50k",
)
