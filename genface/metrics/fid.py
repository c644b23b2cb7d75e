"""Fréchet Inception Distance (FID).

Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS 2017 (arXiv 1706.08500). Inception-v3 (TF 2015-12-05) pool3 features
of generated images (quantised to 8 bits) against all images of the reference set, as NVlabs
``stylegan2-ada-pytorch`` ``fid50k_full``; the network and resize are torch-fidelity's, so
values agree with torch-fidelity and torchmetrics given the same images. The reference set
must be named when reporting (the "full" in the name means all of it).
"""

from __future__ import annotations

from genface.metrics.common import inception_pair, register_inception_metrics
from genface.metrics.frechet import feature_stats, frechet_distance
from genface.metrics.registry import EvalContext


def _fid(ctx: EvalContext, num_gen: int, name: str, inception_weights: str | None = None) -> dict[str, float]:
    real, gen = inception_pair(ctx, num_gen, inception_weights)
    value = frechet_distance(*feature_stats(gen), *feature_stats(real))
    return {name: value, f"{name}/num_reference": len(real)}


register_inception_metrics(
    _fid, "fid{k}k_full",
    description="FID, {k}k generated vs all reference images, Inception-v3 (TF 2015-12-05) pool3",
    paper="Heusel et al. 2017, GANs Trained by a Two Time-Scale Update Rule (arXiv 1706.08500)",
    reference_impl="NVlabs stylegan2-ada-pytorch fid50k_full; torch-fidelity / torchmetrics FID",
)
