"""Fréchet SyntheticFaces Distance (FSD): a Fréchet distance in genface's own feature space.

The Fréchet distance of Heusel et al. 2017 (arXiv 1706.08500, eq. 6; computed as in NVlabs
``stylegan2-ada-pytorch``, see :mod:`genface.metrics.frechet`) between Gaussians fitted to the
pooled features of :class:`genface.metrics.synth_net.SynthFeatureNet`, a small CNN genface
trains itself on SyntheticFaces factor and identity labels (no download). It is *not* an
FID: its values are only comparable with other FSDs at the same resolution and recipe
version, never with published FIDs. Meant for SyntheticFaces-trained models; on real faces
the network is out of its training domain.
"""

from __future__ import annotations

import functools

from genface.metrics.common import generated_features, iter_reference, reference_features
from genface.metrics.frechet import feature_stats, frechet_distance
from genface.metrics.registry import EvalContext, register_metric
from genface.metrics.synth_net import SynthNetFeatures, get_synth_net


def synth_extractor(ctx: EvalContext) -> SynthNetFeatures:
    """The feature extractor at the reference's resolution (trained on first use, then cached)."""
    res = next(iter_reference(ctx.reference, 1)).shape[-1]
    key = ("synth_extractor", res)
    if key not in ctx.memo:
        ctx.memo[key] = SynthNetFeatures(get_synth_net(res, ctx.cache_dir), ctx.device)
    return ctx.memo[key]


def _fsd(ctx: EvalContext, num_gen: int, name: str) -> dict[str, float]:
    ext = synth_extractor(ctx)
    real = reference_features(ctx.reference, ext, device=ctx.device, batch_size=ctx.batch_size,
                              cache=ctx.cache_dir, key=ctx.reference_key)
    gen = generated_features(ctx.generator_fn, ext, num_gen, seed=ctx.seed, device=ctx.device,
                             batch_size=ctx.batch_size, memo=ctx.memo)
    out = {name: frechet_distance(*feature_stats(gen["feat"]), *feature_stats(real["feat"])),
           f"{name}/num_reference": len(real["feat"])}
    if "face_logit" in gen:
        out[f"{name}/face_rate"] = float((gen["face_logit"] > 0).mean())
        out[f"{name}/ref_face_rate"] = float((real["face_logit"] > 0).mean())
    return out


for _k in (10, 1):
    _name = f"fsd_synth{_k}k"
    register_metric(
        _name,
        needs=("generator", "reference"),
        description=f"Frechet SyntheticFaces Distance (not FID): {_k}k generated vs all reference "
        "images in the features of genface's own SyntheticFaces-trained CNN",
        paper="Frechet distance of Heusel et al. 2017 (arXiv 1706.08500) in a genface feature space",
        reference_impl="frechet distance as NVlabs stylegan2-ada-pytorch; feature net: genface",
    )(functools.partial(_fsd, num_gen=_k * 1000, name=_name))
