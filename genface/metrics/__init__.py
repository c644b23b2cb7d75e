"""Evaluation metrics, registered under names that state their protocol.

Usage (what ``genface-compare`` calls)::

    from genface.metrics import compute_metric, compute_metrics, list_metrics, get_metric

    results = compute_metrics(
        ["fsd_synth10k", "swd2k", "msssim_pairs1k"],
        generator_fn=lambda n, seed: G.sample(n, seed),  # (n, 3, H, W) float in [-1, 1]
        reference=SyntheticFaces(num_images=10000, resolution=64, seed=0),
        device="cpu",
        reference_key="synthfaces-n10000-r64-s0",  # optional: names the reference in the cache
    )
    # -> {"fsd_synth10k": 3.1, "fsd_synth10k/num_reference": 10000.0, "fsd_synth10k/seconds": ..., ...}

Interface:

* ``generator_fn(n, seed) -> Tensor (n, 3, H, W)`` float in ``[-1, 1]``; it is called in
  batches of ``batch_size`` with seed ``seed + b`` for batch ``b``. Generated images are
  quantised to 8 bits before being measured (as NVlabs does).
* ``reference``: a dataset following genface's sample contract (items are dicts with
  ``"image"`` float ``(3, H, W)`` in ``[-1, 1]``) or a tensor ``(N, 3, H, W)`` in ``[-1, 1]``.
* ``recon_fn(x) -> x_hat`` for autoencoders (``(N, 3, H, W)`` in ``[-1, 1]``).
* ``model`` for PPL: ``model.mapping(z) -> ws`` and ``model.synthesis(ws, noise_mode="const")``,
  latent size in ``model.z_dim`` (or ``model.config.z_dim``, or the ``z_dim=`` option).
* Each :class:`MetricSpec` declares ``needs`` (from :data:`NEEDS`: ``"generator"``,
  ``"reference"``, ``"autoencoder"``, ``"stylegan_mapping"``) and ``requires`` (external
  resources: ``"inception_weights"``, ``"dlib"``); ``list_metrics(available={...})`` lists the
  metrics a model can supply and ``get_metric(name).unavailable_reason()`` says why one
  cannot run here (``None`` when it can).
* Results: a flat ``dict[str, float]``; the headline value under the metric name (for
  precision/recall: ``<name>/precision`` and ``<name>/recall``), extras under
  ``<name>/<what>``, wall time under ``<name>/seconds``. Lower is better except IS,
  precision, recall, PSNR, SSIM, and same-person rate; for MS-SSIM diversity lower means more varied.
* Reference features are cached under ``cache_dir`` (``$GENFACE_CACHE/metrics`` or
  ``~/.cache/genface/metrics``), keyed by feature network, ``reference_key`` (default: SHA-1 of
  the reference pixels), resolution and count.

Name scheme (after NVlabs ``metric_main.py``): ``fid10k_full`` = FID of 10k generated images
against the full reference set; ``pr10k3_full`` = precision/recall with k = 3; ``swd2k`` =
SWD on 2048 generated and 2048 reference images; ``ppl10k_wend_pixel`` = PPL in W, ``t = 0``,
10k samples, pixel distance. Only names with ``fid``, ``kid``, ``is`` use Inception-v3;
``fsd_synth*`` (genface's own feature net) and ``fd_dlib*`` (dlib face embedding) are other
feature spaces and never comparable to published FIDs; ``kid_synth*``, ``pr_synth*``,
``kid_dlib*``, ``pr_dlib*`` are KID and precision/recall in those spaces. Their validity
(Heusel et al.'s disturbance tests) is checked by :mod:`genface.metrics.validity`. See
``docs/metrics.md``.

Per-metric functions on tensors / features, for direct use: :func:`frechet_distance`,
:func:`feature_stats`, :func:`kernel_distance`, :func:`inception_score`,
:func:`precision_recall`, :func:`swd_levels`, :func:`ms_ssim`, :func:`reconstruction_errors`,
:func:`path_lengths` / :func:`ppl_from_lengths`, :func:`identity_retrieval_top1`.
"""

from genface.metrics.registry import (  # noqa: I001  (registry first: metric modules register into it)
    NEEDS,
    EvalContext,
    MetricSpec,
    compute_metric,
    compute_metrics,
    get_metric,
    list_metrics,
    register_metric,
)
from genface.metrics import (  # noqa: F401  (importing registers the metrics)
    face_embed,
    fid,
    fsd,
    inception,
    isc,
    kid,
    msssim,
    ppl,
    prc,
    reconstruction,
    swap,
    swd,
)
from genface.metrics.common import cache_dir, reference_features
from genface.metrics.face_embed import DlibFaceEmbedder, identity_retrieval_top1
from genface.metrics.frechet import feature_stats, frechet_distance
from genface.metrics.inception import InceptionFeatures, find_inception_weights
from genface.metrics.isc import inception_score
from genface.metrics.kid import kernel_distance
from genface.metrics.msssim import ms_ssim
from genface.metrics.ppl import path_lengths, ppl_from_lengths
from genface.metrics.prc import precision_recall
from genface.metrics.reconstruction import reconstruction_errors
from genface.metrics.swd import swd_levels
from genface.metrics.synth_net import SynthFeatureNet, get_synth_net

__all__ = [
    "NEEDS",
    "DlibFaceEmbedder",
    "EvalContext",
    "InceptionFeatures",
    "MetricSpec",
    "SynthFeatureNet",
    "cache_dir",
    "compute_metric",
    "compute_metrics",
    "feature_stats",
    "find_inception_weights",
    "frechet_distance",
    "get_metric",
    "get_synth_net",
    "identity_retrieval_top1",
    "inception_score",
    "kernel_distance",
    "list_metrics",
    "ms_ssim",
    "path_lengths",
    "ppl_from_lengths",
    "precision_recall",
    "reconstruction_errors",
    "reference_features",
    "register_metric",
    "swd_levels",
]
