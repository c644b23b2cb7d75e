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
from genface.metrics.kid import kernel_distance
from genface.metrics.prc import precision_recall
from genface.metrics.registry import EvalContext, register_metric
from genface.metrics.synth_net import SynthNetFeatures, get_synth_net


def synth_extractor(ctx: EvalContext) -> SynthNetFeatures:
    """The feature extractor at the reference's resolution (trained on first use, then cached)."""
    res = next(iter_reference(ctx.reference, 1)).shape[-1]
    key = ("synth_extractor", res)
    if key not in ctx.memo:
        ctx.memo[key] = SynthNetFeatures(get_synth_net(res, ctx.cache_dir), ctx.device)
    return ctx.memo[key]


def synth_features(ctx: EvalContext, num_gen: int) -> tuple[dict, dict]:
    """``(reference, generated)`` feature dicts in the synth-net space (shared by FSD, KID, PR)."""
    ext = synth_extractor(ctx)
    real = reference_features(ctx.reference, ext, device=ctx.device, batch_size=ctx.batch_size,
                              cache=ctx.cache_dir, key=ctx.reference_key)
    gen = generated_features(ctx.generator_fn, ext, num_gen, seed=ctx.seed, device=ctx.device,
                             batch_size=ctx.batch_size, memo=ctx.memo)
    return real, gen


def _face_rates(name: str, real: dict, gen: dict) -> dict[str, float]:
    if "face_logit" not in gen:
        return {}
    return {f"{name}/face_rate": float((gen["face_logit"] > 0).mean()),
            f"{name}/ref_face_rate": float((real["face_logit"] > 0).mean())}


def _fsd(ctx: EvalContext, num_gen: int, name: str) -> dict[str, float]:
    real, gen = synth_features(ctx, num_gen)
    return {name: frechet_distance(*feature_stats(gen["feat"]), *feature_stats(real["feat"])),
            f"{name}/num_reference": len(real["feat"]), **_face_rates(name, real, gen)}


def _kid_synth(ctx: EvalContext, num_gen: int, name: str, num_subsets: int = 100,
               max_subset_size: int = 1000) -> dict[str, float]:
    real, gen = synth_features(ctx, num_gen)
    mean, std = kernel_distance(real["feat"], gen["feat"], num_subsets, max_subset_size, seed=ctx.seed)
    return {name: mean, f"{name}/std": std, f"{name}/num_reference": len(real["feat"])}


def _pr_synth(ctx: EvalContext, num_gen: int, name: str, k: int = 3) -> dict[str, float]:
    real, gen = synth_features(ctx, num_gen)
    p, r = precision_recall(real["feat"], gen["feat"], k=k)
    return {f"{name}/precision": p, f"{name}/recall": r, f"{name}/num_reference": len(real["feat"])}


_SPACE = "the features of genface's own SyntheticFaces-trained CNN (recipe v2: face/non-face head)"
for _k in (10, 1):
    _name = f"fsd_synth{_k}k"
    register_metric(
        _name,
        needs=("generator", "reference"),
        description=f"Frechet SyntheticFaces Distance (not FID): {_k}k generated vs all reference "
        f"images in {_SPACE}; /face_rate = share the net calls a face",
        paper="Frechet distance of Heusel et al. 2017 (arXiv 1706.08500) in a genface feature space",
        reference_impl="frechet distance as NVlabs stylegan2-ada-pytorch; feature net: genface",
    )(functools.partial(_fsd, num_gen=_k * 1000, name=_name))
    _name = f"kid_synth{_k}k"
    register_metric(
        _name,
        needs=("generator", "reference"),
        description=f"KID (unscaled, not Inception): {_k}k generated vs all reference images in {_SPACE}",
        paper="Binkowski et al. 2018 (arXiv 1801.01401) in a genface feature space",
        reference_impl="genface.metrics.kid.kernel_distance (NVlabs protocol)",
    )(functools.partial(_kid_synth, num_gen=_k * 1000, name=_name))
    _name = f"pr_synth{_k}k3"
    register_metric(
        _name,
        needs=("generator", "reference"),
        description=f"precision/recall (k=3, not Inception): {_k}k generated vs all reference images in {_SPACE}",
        paper="Kynkaanniemi et al. 2019 (arXiv 1904.06991) in a genface feature space",
        reference_impl="genface.metrics.prc.precision_recall (NVlabs protocol)",
    )(functools.partial(_pr_synth, num_gen=_k * 1000, name=_name))
