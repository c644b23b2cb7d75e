"""Metrics in dlib's 128-d face-embedding space (real faces; optional ``faces`` extra).

The embedding is dlib's ResNet face recogniser (``dlib_face_recognition_resnet_model_v1``,
King 2017, dlib.net; 99.38% on LFW; two faces are "the same person" below distance 0.6),
shipped with ``face_recognition_models`` together with its 5-point landmark model; faces are
found with dlib's HOG frontal detector (Dalal & Triggs 2005) on the image upsampled to
``upsample_to`` px. Install with ``pip install dlib-bin face_recognition_models``.

* ``fd_dlib{N}k_full``, ``kid_dlib{N}k_full``, ``pr_dlib{N}k3_full``: Fréchet distance
  (Heusel et al. 2017, eq. 6), KID and precision/recall on the embeddings of generated and
  reference faces. Not FID; an image whose face the detector misses counts, embedded at a
  fixed "no face" point (:data:`NO_FACE_EMBEDDING`); ``/gen_detected``, ``/ref_detected``
  are detection rates.
* ``id_dlib_recon1k``: identity kept by an autoencoder: embedding distance between a face
  and its reconstruction, and the share of pairs under dlib's 0.6 same-person threshold.
* :func:`identity_retrieval_top1`: ID retrieval (FaceShifter / SimSwap protocol) for swaps.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch

from genface.metrics.common import (
    generated_features,
    iter_reference,
    reference_features,
    reference_subset,
    to_float,
    to_uint8,
)
from genface.metrics.frechet import feature_stats, frechet_distance
from genface.metrics.kid import kernel_distance
from genface.metrics.prc import precision_recall
from genface.metrics.registry import EvalContext, register_metric, register_resource_check
from genface.utils import require

#: dlib's documented same-person threshold on the embedding distance.
SAME_PERSON_THRESHOLD = 0.6


def _models_dir() -> Path | None:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def dlib_unavailable_reason(**_) -> str | None:
    """``None`` when dlib and face_recognition_models are importable, else the fix."""
    if importlib.util.find_spec("dlib") is None:
        return "dlib is not installed (pip install dlib-bin, or genface[faces])"
    models = _models_dir()
    if models is None or not (models / "dlib_face_recognition_resnet_model_v1.dat").is_file():
        return "face_recognition_models is not installed (pip install face_recognition_models)"
    return None


class DlibFaceEmbedder:
    """128-d dlib face embeddings of ``uint8`` images ``(N, 3, H, W)``.

    Returns ``{"emb": (N, 128)}`` with NaN rows where no face was found.

    Args:
        detector: ``"hog"`` finds the face with dlib's frontal detector (the largest one
            is used; misses give NaN); ``"full"`` takes the whole (aligned) crop as the face
            box and never misses.
        upsample_to: images are resized (bicubic) to this side before detection and
            embedding, since the HOG detector misses faces under about 80 px.
    """

    def __init__(self, detector: str = "hog", upsample_to: int = 256):
        why = dlib_unavailable_reason()
        if why:
            raise ImportError(why)
        if detector not in ("hog", "full"):
            raise ValueError(f"detector must be 'hog' or 'full', got {detector!r}")
        dlib = require("dlib", "faces")

        models = _models_dir()
        self.detector_kind, self.upsample_to = detector, upsample_to
        self.detector = dlib.get_frontal_face_detector() if detector == "hog" else None
        self.shape_predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self.recognizer = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
        self.cache_name = f"dlib-resnet-v1-{detector}-{upsample_to}"
        self._dlib = dlib

    def embed_one(self, image: np.ndarray) -> np.ndarray:
        """Embedding ``(128,)`` of one ``HxWx3`` uint8 RGB image, NaN when no face is found."""
        cv2 = require("cv2", "faces")

        img = np.ascontiguousarray(image)
        if self.upsample_to and max(img.shape[:2]) != self.upsample_to:
            img = cv2.resize(img, (self.upsample_to, self.upsample_to), interpolation=cv2.INTER_CUBIC)
        if self.detector is not None:
            boxes = list(self.detector(img, 0))
            if not boxes:
                return np.full(128, np.nan, dtype=np.float32)
            box = max(boxes, key=lambda b: b.width() * b.height())
        else:
            h, w = img.shape[:2]
            box = self._dlib.rectangle(0, 0, w - 1, h - 1)
        shape = self.shape_predictor(img, box)
        return np.asarray(self.recognizer.compute_face_descriptor(img, shape), dtype=np.float32)

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        arr = images.permute(0, 2, 3, 1).cpu().numpy()
        return {"emb": torch.from_numpy(np.stack([self.embed_one(a) for a in arr]))}


def face_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between corresponding rows of embeddings ``(N, 128)``."""
    return np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1)


def identity_retrieval_top1(query: np.ndarray, gallery: np.ndarray, query_ids: np.ndarray,
                            gallery_ids: np.ndarray) -> float:
    """Share of queries whose nearest gallery embedding has the query's identity.

    The one ID-retrieval implementation of genface (used by :mod:`genface.metrics.swap`).

    Args:
        query: embeddings ``(N, D)`` (e.g. of swapped faces); NaN rows (no face found) count
            as misses, in the denominator.
        gallery: embeddings ``(M, D)`` of faces with known identities; NaN rows (gallery
            faces the detector missed) are left out of the gallery, never fail the queries.
        query_ids: identity each query should be recognised as ``(N,)``.
        gallery_ids: identities of the gallery ``(M,)``.

    Returns:
        the hit rate; NaN when there is no query.

    Raises:
        ValueError: lengths of embeddings and identities differ, or no gallery row is finite.
    """
    q, g = np.asarray(query, np.float64), np.asarray(gallery, np.float64)
    qi, gi = np.asarray(query_ids), np.asarray(gallery_ids)
    if len(q) != len(qi) or len(g) != len(gi):
        raise ValueError(f"query ({len(q)}) / gallery ({len(g)}) and their identities "
                         f"({len(qi)} / {len(gi)}) must match in length")
    if len(q) == 0:
        return float("nan")
    keep = np.isfinite(g).all(axis=1)
    if not keep.any():
        raise ValueError("identity_retrieval_top1: no gallery embedding is finite (no face found in the gallery)")
    g, gi = g[keep], gi[keep]
    ok = np.isfinite(q).all(axis=1)
    d = np.linalg.norm(np.where(ok[:, None], q, 0.0)[:, None, :] - g[None, :, :], axis=-1)
    hit = (gi[d.argmin(axis=1)] == qi) & ok
    return float(hit.mean())


_EMBEDDERS: dict[tuple, DlibFaceEmbedder] = {}


def _embedder(detector: str) -> DlibFaceEmbedder:
    if detector not in _EMBEDDERS:
        _EMBEDDERS[detector] = DlibFaceEmbedder(detector)
    return _EMBEDDERS[detector]


#: Where a face the detector misses is put in the embedding space: the origin. dlib's
#: descriptors of faces have norm about 1.45 and their mean norm about 1.34 (measured on
#: UTKFace adults), with a spread of about 0.56 around the mean, so the origin is far
#: (>2 spreads) from every face and the same point for every kind of failure.
NO_FACE_EMBEDDING = 0.0


def _dlib_raw(ctx: EvalContext, num_gen: int, detector: str) -> tuple[np.ndarray, np.ndarray]:
    ext = _embedder(detector)
    real = reference_features(ctx.reference, ext, device="cpu", batch_size=ctx.batch_size,
                              cache=ctx.cache_dir, key=ctx.reference_key)["emb"]
    gen = generated_features(ctx.generator_fn, ext, num_gen, seed=ctx.seed, device="cpu",
                             batch_size=ctx.batch_size, memo=ctx.memo)["emb"]
    return real, gen


def dlib_features(ctx: EvalContext, num_gen: int, detector: str = "hog") -> tuple[np.ndarray, np.ndarray, dict]:
    """``(reference, generated, detection rates)`` embeddings for ``fd_dlib*`` and ``kid_dlib*``.

    Misses count: an image in which the detector finds no face gets the fixed "no face"
    embedding :data:`NO_FACE_EMBEDDING` (on both sides), so a set the detector cannot read
    moves away from the reference instead of being dropped, and no result is NaN.
    """
    real, gen = _dlib_raw(ctx, num_gen, detector)
    r_ok, g_ok = np.isfinite(real).all(1), np.isfinite(gen).all(1)
    real = np.where(r_ok[:, None], real, NO_FACE_EMBEDDING)
    gen = np.where(g_ok[:, None], gen, NO_FACE_EMBEDDING)
    return real, gen, {"gen_detected": float(g_ok.mean()), "ref_detected": float(r_ok.mean())}


def _rates(name: str, rates: dict, n_ref: int) -> dict[str, float]:
    return {**{f"{name}/{k}": v for k, v in rates.items()}, f"{name}/num_reference": n_ref}


def _fd_dlib(ctx: EvalContext, num_gen: int, name: str, detector: str = "hog") -> dict[str, float]:
    real, gen, rates = dlib_features(ctx, num_gen, detector)
    return {name: frechet_distance(*feature_stats(gen), *feature_stats(real)), **_rates(name, rates, len(real))}


def _kid_dlib(ctx: EvalContext, num_gen: int, name: str, detector: str = "hog", num_subsets: int = 100,
              max_subset_size: int = 1000) -> dict[str, float]:
    real, gen, rates = dlib_features(ctx, num_gen, detector)
    mean, std = kernel_distance(real, gen, num_subsets, max_subset_size, seed=ctx.seed)
    return {name: mean, f"{name}/std": std, **_rates(name, rates, len(real))}


def _pr_dlib(ctx: EvalContext, num_gen: int, name: str, detector: str = "hog", k: int = 3) -> dict[str, float]:
    """Precision/recall where a miss lies outside every manifold: the manifolds are built from
    detected faces only, precision = share of *all* generated images that are detected and
    inside the real manifold, recall = share of detected real faces inside the manifold of the
    detected generated faces (0 when at most ``k`` are detected). (Putting misses at the
    origin, as FD does, would let generated misses fall inside the real manifold through the
    reference's own misses.)"""
    real, gen = _dlib_raw(ctx, num_gen, detector)
    r_ok, g_ok = np.isfinite(real).all(1), np.isfinite(gen).all(1)
    rates = {"gen_detected": float(g_ok.mean()), "ref_detected": float(r_ok.mean())}
    p = r = 0.0
    if g_ok.sum() > k:
        p, r = precision_recall(real[r_ok], gen[g_ok], k=k)
        p *= float(g_ok.mean())
    return {f"{name}/precision": p, f"{name}/recall": r, **_rates(name, rates, len(real))}


def _id_recon(ctx: EvalContext, num: int, name: str, detector: str = "hog") -> dict[str, float]:
    ext = _embedder(detector)
    dists, found_x, found_y = [], 0, 0
    total = 0
    for batch in iter_reference(reference_subset(ctx.reference, num, ctx.seed), ctx.batch_size):
        with torch.no_grad():
            x_hat = ctx.recon_fn(to_float(batch).to(ctx.device)).cpu()
        ex = ext(batch)["emb"].numpy()
        ey = ext(to_uint8(x_hat))["emb"].numpy()
        ok_x, ok_y = np.isfinite(ex).all(1), np.isfinite(ey).all(1)
        found_x += int(ok_x.sum())
        found_y += int(ok_y.sum())
        both = ok_x & ok_y
        dists.append(face_distance(ex[both], ey[both]))
        total += batch.shape[0]
    d = np.concatenate(dists)
    return {
        f"{name}/distance": float(d.mean()) if d.size else float("nan"),
        f"{name}/same_person_rate": float((d < SAME_PERSON_THRESHOLD).mean()) if d.size else float("nan"),
        f"{name}/input_detected": found_x / total,
        f"{name}/recon_detected": found_y / total,
    }


register_resource_check("dlib", dlib_unavailable_reason)

_DLIB = "dlib's 128-d face embedding (not FID), HOG detection; misses embedded at the 'no face' origin"
for _k in (10, 1):
    _name = f"fd_dlib{_k}k_full"
    register_metric(
        _name,
        needs=("generator", "reference"),
        requires=("dlib",),
        description=f"Frechet distance in {_DLIB}, {_k}k generated vs all reference images; "
        "/gen_detected = detection rate",
        paper="Heusel et al. 2017 (Frechet distance); dlib ResNet face embedding (King, dlib.net)",
        reference_impl="dlib face_recognition_model_v1 via face_recognition_models",
    )(functools.partial(_fd_dlib, num_gen=_k * 1000, name=_name))
    _name = f"kid_dlib{_k}k_full"
    register_metric(
        _name,
        needs=("generator", "reference"),
        requires=("dlib",),
        description=f"KID (unscaled) in {_DLIB}, {_k}k generated vs all reference images",
        paper="Binkowski et al. 2018 (arXiv 1801.01401); dlib ResNet face embedding",
        reference_impl="genface.metrics.kid.kernel_distance on dlib embeddings",
    )(functools.partial(_kid_dlib, num_gen=_k * 1000, name=_name))
    _name = f"pr_dlib{_k}k3_full"
    register_metric(
        _name,
        needs=("generator", "reference"),
        requires=("dlib",),
        description=f"precision/recall (k=3) in {_DLIB}, {_k}k generated vs all reference images",
        paper="Kynkaanniemi et al. 2019 (arXiv 1904.06991); dlib ResNet face embedding",
        reference_impl="genface.metrics.prc.precision_recall on dlib embeddings",
    )(functools.partial(_pr_dlib, num_gen=_k * 1000, name=_name))

register_metric(
    "id_dlib_recon1k",
    needs=("autoencoder", "reference"),
    requires=("dlib",),
    description="identity kept by reconstruction: dlib embedding distance input vs recon_fn(input) "
    "on 1000 random reference faces, and share under dlib's 0.6 same-person threshold",
    paper="dlib ResNet face embedding (King, dlib.net)",
    reference_impl="dlib face_recognition_model_v1 via face_recognition_models",
)(functools.partial(_id_recon, num=1000, name="id_dlib_recon1k"))
