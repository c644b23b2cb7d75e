"""Face masks on aligned crops: landmark hull (eroded and blurred), ellipse fallback, and the
eye/mouth region weights used by the FaceSwap loss.

All functions take landmarks in crop pixels (transform them with
:func:`genface.faces.align.transform_points` first) and return float32 arrays in [0, 1].
"""

from __future__ import annotations

import numpy as np

from genface.utils import require

__all__ = ["hull_mask", "ellipse_mask", "soften_mask", "face_mask", "region_weights",
           "EYE_IDX", "MOUTH_IDX"]

#: iBUG 68-point indices of the eyes (with brows) and of the mouth.
EYE_IDX = (tuple(range(17, 22)) + tuple(range(36, 42)), tuple(range(22, 27)) + tuple(range(42, 48)))
MOUTH_IDX = tuple(range(48, 68))


def hull_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Filled convex hull of the landmarks on a ``size`` x ``size`` canvas, (size, size) float32."""
    cv2 = require("cv2", "faces")

    mask = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(np.round(np.asarray(landmarks)).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    return mask.astype(np.float32) / 255.0


def ellipse_mask(size: int, padding: float) -> np.ndarray:
    """A face-shaped ellipse for crops aligned on the template (when no 68 landmarks exist).

    Args:
        size: crop side.
        padding: the template padding the crop was cut with.
    """
    cv2 = require("cv2", "faces")

    from genface.faces.align import template_points

    t = template_points(size, padding)
    eye_dist = np.linalg.norm(t[1] - t[0])
    centre = (t[0] + t[1] + t[3] + t[4]) / 4
    mask = np.zeros((size, size), np.uint8)
    axes = (int(round(eye_dist * 1.05)), int(round(eye_dist * 1.35)))
    cv2.ellipse(mask, (int(round(centre[0])), int(round(centre[1]))), axes, 0, 0, 360, 255, -1)
    return mask.astype(np.float32) / 255.0


def soften_mask(mask: np.ndarray, erode: float = 0.05, blur: float = 0.08) -> np.ndarray:
    """Erode then Gaussian-blur a mask (faceswap's convert mask).

    Args:
        mask: (S, S) float mask in [0, 1].
        erode: erosion kernel as a fraction of S (negative dilates); 0 = none.
        blur: Gaussian kernel as a fraction of S; 0 = a hard edge.
    """
    cv2 = require("cv2", "faces")

    s = mask.shape[0]
    out = mask.astype(np.float32)
    k = int(round(abs(erode) * s))
    if k >= 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        out = cv2.erode(out, kernel) if erode > 0 else cv2.dilate(out, kernel)
    k = int(round(blur * s)) | 1
    if k >= 3:
        out = cv2.GaussianBlur(out, (k, k), 0)
    return np.clip(out, 0.0, 1.0)


def face_mask(landmarks: np.ndarray | None, size: int, padding: float, erode: float = 0.05,
              blur: float = 0.08) -> np.ndarray:
    """The convert mask of an aligned crop: 68-point hull, else the template ellipse; softened.

    Args:
        landmarks: (68, 2) crop-pixel landmarks, or None / fewer points for the ellipse.
        size: crop side.
        padding: template padding of the crop (for the ellipse).
        erode: see :func:`soften_mask`.
        blur: see :func:`soften_mask`.
    """
    if landmarks is not None and len(landmarks) == 68:
        m = hull_mask(landmarks, size)
    else:
        m = ellipse_mask(size, padding)
    return soften_mask(m, erode, blur)


def region_weights(landmarks: np.ndarray, size: int, eye: float = 3.0, mouth: float = 2.0) -> np.ndarray:
    """Per-pixel loss weights: ``eye`` on the eye hulls, ``mouth`` on the mouth hull, 1 elsewhere.

    Args:
        landmarks: (68, 2) crop-pixel landmarks.
        size: crop side.
        eye: weight of the eye regions (faceswap: 3); 1 = not emphasised.
        mouth: weight of the mouth region (faceswap: 2); 1 = not emphasised.
    """
    lm = np.asarray(landmarks)
    if lm.shape != (68, 2):
        raise ValueError(f"region weights need (68, 2) landmarks, got {lm.shape}")
    w = np.ones((size, size), np.float32)
    mouth_m = hull_mask(lm[list(MOUTH_IDX)], size)
    w = np.where(mouth_m > 0, mouth, w)
    for idx in EYE_IDX:
        w = np.where(hull_mask(lm[list(idx)], size) > 0, eye, w)
    return w.astype(np.float32)
