"""Face-swap metrics.

* With ground truth (synthetic faces, where the true face of B in A's pose can be rendered):
  :func:`reconstruction_metrics` -- MAE, PSNR and SSIM of swaps against it.
* On real faces (no ground truth), following FaceShifter/SimSwap's protocol loosely:
  :func:`identity_similarity` of swaps to the target identity and :func:`id_retrieval_top1`
  over a gallery, both with dlib's 128-d descriptor (a recognition model *not* trained with
  the swapper), and :func:`landmark_error` between the source face and its swap (pose and
  expression kept).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["reconstruction_metrics", "embed_images", "identity_similarity", "id_retrieval_top1",
           "landmark_error", "detect_landmarks"]


def reconstruction_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """MAE, PSNR (dB) and SSIM (11x11 Gaussian window) of ``pred`` against ``target``.

    Args:
        pred: swapped faces (B, 3, H, W) in [0, 1].
        target: ground-truth faces, same shape and range.
    """
    from torchmetrics.functional.image import (
        peak_signal_noise_ratio,
        structural_similarity_index_measure,
    )

    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"pred and target must be equal (B, C, H, W), got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    pred, target = pred.float().clamp(0, 1), target.float().clamp(0, 1)
    return {
        "mae": float((pred - target).abs().mean()),
        "psnr": float(peak_signal_noise_ratio(pred, target, data_range=1.0)),
        "ssim": float(structural_similarity_index_measure(pred, target, data_range=1.0)),
    }


def _to_uint8_list(images) -> list[np.ndarray]:
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ValueError(f"image tensors must be (B, 3, H, W) in [0, 1], got {tuple(images.shape)}")
        arr = images.detach().float().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1)
        return list(arr.cpu().numpy())
    return [np.asarray(im) for im in images]


def embed_images(images, detector=None, embedder=None) -> tuple[np.ndarray, np.ndarray]:
    """dlib descriptors of the largest face of each image.

    Args:
        images: a (B, 3, H, W) tensor in [0, 1] or a list of RGB uint8 arrays.
        detector: a dlib :class:`~genface.faces.detect.FaceDetector`; None = HOG, 68 points.
        embedder: a :class:`~genface.faces.detect.FaceEmbedder`; None = a new one.

    Returns:
        ``(descriptors (N, 128) with NaN rows where no face was found, found (N,) bool)``.
    """
    from genface.faces.detect import FaceDetector, FaceEmbedder

    detector = detector or FaceDetector("hog")
    embedder = embedder or FaceEmbedder()
    ims = _to_uint8_list(images)
    out = np.full((len(ims), 128), np.nan)
    for i, im in enumerate(ims):
        faces = detector.detect(im)
        if faces:
            out[i] = embedder.embed(im, faces[0])
    return out, ~np.isnan(out).any(1)


def detect_landmarks(images, detector=None) -> np.ndarray:
    """68-point landmarks of the largest face per image, (N, 68, 2) with NaN where none."""
    from genface.faces.detect import FaceDetector

    detector = detector or FaceDetector("hog", landmarks=68)
    ims = _to_uint8_list(images)
    out = np.full((len(ims), 68, 2), np.nan)
    for i, im in enumerate(ims):
        faces = detector.detect(im)
        if faces and len(faces[0].landmarks) == 68:
            out[i] = faces[0].landmarks
    return out


def identity_similarity(swap_embeddings: np.ndarray, target_embeddings: np.ndarray,
                        threshold: float = 0.6) -> dict[str, float]:
    """How much the swaps look like the target identity.

    Args:
        swap_embeddings: (N, 128) descriptors of the swapped faces (NaN rows are skipped).
        target_embeddings: (M, 128) descriptors of real faces of the target identity; their
            mean is the identity's centre.
        threshold: dlib's same-person distance.

    Returns:
        ``id_cosine`` (mean cosine similarity to the centre), ``id_distance`` (mean Euclidean
        distance to the centre), ``id_match_rate`` (fraction closer than ``threshold``) and
        ``n`` (swaps with a face).
    """
    s = np.asarray(swap_embeddings, dtype=np.float64)
    s = s[~np.isnan(s).any(1)]
    t = np.asarray(target_embeddings, dtype=np.float64)
    t = t[~np.isnan(t).any(1)]
    if len(t) == 0:
        raise ValueError("no target descriptor: the target identity needs at least one face")
    if len(s) == 0:
        return {"id_cosine": float("nan"), "id_distance": float("nan"), "id_match_rate": 0.0, "n": 0}
    centre = t.mean(0)
    cos = s @ centre / (np.linalg.norm(s, axis=1) * np.linalg.norm(centre))
    dist = np.linalg.norm(s - centre, axis=1)
    return {"id_cosine": float(cos.mean()), "id_distance": float(dist.mean()),
            "id_match_rate": float((dist < threshold).mean()), "n": int(len(s))}


def id_retrieval_top1(query: np.ndarray, query_labels, gallery: np.ndarray, gallery_labels) -> float:
    """Top-1 identity retrieval: the fraction of queries whose nearest gallery face (Euclidean)
    has the query's label. Queries with NaN descriptors count as misses.

    Args:
        query: (N, D) descriptors (e.g. of swaps), labels (N,) = the intended identity.
        query_labels: (N,) labels.
        gallery: (M, D) descriptors of real faces of every identity.
        gallery_labels: (M,) labels.
    """
    q, g = np.asarray(query, np.float64), np.asarray(gallery, np.float64)
    ql, gl = np.asarray(query_labels), np.asarray(gallery_labels)
    if len(q) != len(ql) or len(g) != len(gl) or len(g) == 0:
        raise ValueError("query/gallery and their labels must match in length; gallery non-empty")
    ok = ~np.isnan(q).any(1)
    gmask = ~np.isnan(g).any(1)
    g, gl = g[gmask], gl[gmask]
    d = np.linalg.norm(q[:, None] - g[None], axis=-1)
    d[~ok] = np.inf
    hit = (gl[np.argmin(np.nan_to_num(d, nan=np.inf), axis=1)] == ql) & ok
    return float(hit.mean()) if len(q) else float("nan")


def landmark_error(source_landmarks: np.ndarray, swap_landmarks: np.ndarray) -> float:
    """Mean landmark distance between source faces and their swaps, over inter-ocular distance.

    Args:
        source_landmarks: (N, 68, 2) landmarks of the source faces.
        swap_landmarks: (N, 68, 2) landmarks found on the swaps (NaN = none; skipped).

    Returns:
        the mean normalised error (NME, 68 points, outer-eye-corner normalisation); NaN when
        no pair is valid.
    """
    s, w = np.asarray(source_landmarks, np.float64), np.asarray(swap_landmarks, np.float64)
    if s.shape != w.shape or s.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must both be (N, 68, 2), got {s.shape} and {w.shape}")
    ok = ~(np.isnan(s).any((1, 2)) | np.isnan(w).any((1, 2)))
    if not ok.any():
        return float("nan")
    iod = np.linalg.norm(s[ok, 36] - s[ok, 45], axis=-1)
    err = np.linalg.norm(s[ok] - w[ok], axis=-1).mean(-1) / iod
    return float(err.mean())
