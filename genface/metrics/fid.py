"""Fréchet Inception Distance (FID).

Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS 2017 (arXiv 1706.08500). Inception-v3 (TF 2015-12-05) pool3 features
of generated images (quantised to 8 bits) against all images of the reference set, as NVlabs
``stylegan2-ada-pytorch`` ``fid50k_full``; the network and resize are torch-fidelity's, so
values agree with torch-fidelity and torchmetrics given the same images. The reference set
must be named when reporting (the "full" in the name means all of it).
"""

from __future__ import annotations

import functools

from genface.metrics.common import generated_features, reference_features
from genface.metrics.frechet import feature_stats, frechet_distance
from genface.metrics.registry import EvalContext, register_metric


def _fid(ctx: EvalContext, num_gen: int, name: str, inception_weights: str | None = None) -> dict[str, float]:
    from genface.metrics.inception import inception_extractor

    ext = inception_extractor(inception_weights, ctx.device, ctx.cache_dir)
    real = reference_features(ctx.reference, ext, device=ctx.device, batch_size=ctx.batch_size,
                              cache=ctx.cache_dir, key=ctx.reference_key)["pool"]
    gen = generated_features(ctx.generator_fn, ext, num_gen, seed=ctx.seed, device=ctx.device,
                             batch_size=ctx.batch_size, memo=ctx.memo)["pool"]
    value = frechet_distance(*feature_stats(gen), *feature_stats(real))
    return {name: value, f"{name}/num_reference": len(real)}


for _k in (50, 10, 1):
    _name = f"fid{_k}k_full"
    register_metric(
        _name,
        needs=("generator", "reference"),
        requires=("inception_weights",),
        description=f"FID, {_k}k generated vs all reference images, Inception-v3 (TF 2015-12-05) pool3",
        paper="Heusel et al. 2017, GANs Trained by a Two Time-Scale Update Rule (arXiv 1706.08500)",
        reference_impl="NVlabs stylegan2-ada-pytorch fid50k_full; torch-fidelity / torchmetrics FID",
    )(functools.partial(_fid, num_gen=_k * 1000, name=_name))
