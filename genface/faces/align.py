"""Face alignment: a similarity transform (Umeyama 1991) from landmarks to a canonical template.

The template is the five-point reference of ArcFace/insightface (eye centres, nose tip,
mouth corners on a 112x112 crop), normalised to [0, 1] and widened by ``padding`` on every
side. 68-point (iBUG 300-W / dlib) landmarks are reduced to those five points; dlib's
5-point model gives the two eye centres and the nose base (three template points).

Conventions: landmarks are (N, 2) arrays of (x, y) pixel coordinates; a transform ``M`` is a
(2, 3) float64 matrix mapping source-image pixels to crop pixels (``cv2.warpAffine``'s
forward matrix); :func:`invert_affine` gives the crop-to-source matrix.
"""

from __future__ import annotations

import numpy as np
import torch

from genface.faces.options import DEFAULT_PADDING  # re-exported here (one home: faces/options.py)
from genface.utils import require

__all__ = [
    "TEMPLATE_5",
    "umeyama",
    "template_points",
    "reduce_landmarks",
    "alignment_matrix",
    "invert_affine",
    "transform_points",
    "warp_to_crop",
    "warp_from_crop",
    "crop_valid_fraction",
    "fitting_padding",
    "DEFAULT_PADDING",
]

#: ArcFace five-point reference (insightface ``arcface_src``) / 112, in [0, 1]:
#: image-left eye centre, image-right eye centre, nose tip, left and right mouth corner.
TEMPLATE_5 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
     [70.7299, 92.2041]], dtype=np.float64) / 112.0


def umeyama(src, dst, estimate_scale: bool = True):
    """Least-squares similarity transform mapping ``src`` points onto ``dst`` (Umeyama 1991).

    Finds c, R, t minimising ``sum ||dst_i - (c R src_i + t)||^2`` with R a rotation
    (reflections excluded), by the SVD of the cross-covariance (Umeyama, "Least-squares
    estimation of transformation parameters between two point patterns", PAMI 1991, eq. 40-42).

    Args:
        src: points (..., N, 2), numpy array or torch tensor (batched over leading dims).
        dst: points of the same shape and type.
        estimate_scale: fit the scale c; False = rigid (c = 1).

    Returns:
        (..., 2, 3) matrix ``[c R | t]`` of the same type (numpy float64 for numpy input).
    """
    is_np = isinstance(src, np.ndarray)
    s = torch.as_tensor(src, dtype=torch.float64) if is_np else src
    d = torch.as_tensor(dst, dtype=torch.float64) if is_np else dst
    if s.shape != d.shape or s.shape[-1] != 2 or s.shape[-2] < 2:
        raise ValueError(f"umeyama needs matching (..., N>=2, 2) point sets, got "
                         f"{tuple(s.shape)} and {tuple(d.shape)}")
    n = s.shape[-2]
    mu_s, mu_d = s.mean(-2, keepdim=True), d.mean(-2, keepdim=True)
    sc, dc = s - mu_s, d - mu_d
    cov = dc.transpose(-1, -2) @ sc / n  # (..., 2, 2)
    u, sig, vh = torch.linalg.svd(cov)
    sign = torch.sign(torch.linalg.det(u) * torch.linalg.det(vh))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    diag = torch.stack([torch.ones_like(sign), sign], -1)  # (..., 2)
    rot = u @ torch.diag_embed(diag) @ vh
    if estimate_scale:
        var_s = sc.pow(2).sum((-1, -2)) / n
        scale = (sig * diag).sum(-1) / var_s.clamp_min(torch.finfo(s.dtype).tiny)
    else:
        scale = torch.ones_like(sign)
    a = scale[..., None, None] * rot
    t = mu_d.transpose(-1, -2) - a @ mu_s.transpose(-1, -2)
    out = torch.cat([a, t], -1)
    return out.numpy() if is_np else out


def template_points(size: int, padding: float = DEFAULT_PADDING) -> np.ndarray:
    """The five template points in pixels of a ``size`` x ``size`` crop.

    Args:
        size: crop side in pixels.
        padding: margin added on every side, as a fraction of the tight template crop
            (0 = the ArcFace framing; 0.15 leaves room for chin and forehead).
    """
    return (TEMPLATE_5 + padding) / (1 + 2 * padding) * size


def reduce_landmarks(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map 68-, 5- or 5-template-point landmarks to template points.

    Args:
        landmarks: (68, 2) iBUG/dlib points or (5, 2) points of dlib's 5-point model (two
            corners of each eye and the nose base). Points already in :data:`TEMPLATE_5`
            order go through :func:`alignment_matrix` with ``template_ordered=True`` instead.

    Returns:
        ``(points, rows)``: the matched points (K, 2) and their rows in :data:`TEMPLATE_5`.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape == (68, 2):
        pts = np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])
        return pts, np.arange(5)
    if lm.shape == (5, 2):
        # dlib 5-point: 0-1 one eye's corners, 2-3 the other's, 4 the nose base (which
        # stands in for the template's nose tip: crops sit a few pixels higher than with 68).
        e1, e2 = lm[0:2].mean(0), lm[2:4].mean(0)
        left, right = (e1, e2) if e1[0] < e2[0] else (e2, e1)
        return np.stack([left, right, lm[4]]), np.array([0, 1, 2])
    raise ValueError(f"landmarks must be (68, 2) or (5, 2), got {lm.shape}")


def alignment_matrix(
    landmarks: np.ndarray,
    size: int = 256,
    padding: float = DEFAULT_PADDING,
    template_ordered: bool = False,
) -> np.ndarray:
    """The (2, 3) similarity taking source pixels to a ``size`` crop aligned on the template.

    Args:
        landmarks: (68, 2) or (5, 2) points in source pixels, see :func:`reduce_landmarks`.
        size: crop side in pixels.
        padding: template padding, see :func:`template_points`.
        template_ordered: the (5, 2) points are already in :data:`TEMPLATE_5` order (eyes,
            nose tip, mouth corners) rather than dlib's 5-point order.
    """
    if template_ordered:
        pts, rows = np.asarray(landmarks, dtype=np.float64), np.arange(5)
        if pts.shape != (5, 2):
            raise ValueError(f"template-ordered landmarks must be (5, 2), got {pts.shape}")
    else:
        pts, rows = reduce_landmarks(landmarks)
    return umeyama(pts, template_points(size, padding)[rows])


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine matrix."""
    full = np.vstack([np.asarray(m, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def transform_points(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to (N, 2) points."""
    p = np.asarray(points, dtype=np.float64)
    return p @ np.asarray(m, dtype=np.float64)[:, :2].T + np.asarray(m, dtype=np.float64)[:, 2]


def warp_to_crop(image: np.ndarray, m: np.ndarray, size: int,
                 fill: float | tuple[float, ...] | None = None) -> np.ndarray:
    """Cut the aligned ``size`` x ``size`` crop out of ``image`` (H, W[, C]) with matrix ``m``.

    Args:
        image: the source image.
        m: source-to-crop matrix.
        size: crop side in pixels.
        fill: value of the crop's pixels outside the source (a constant, per channel or
            scalar); None = replicate the source's border pixels (streaks where the crop
            leaves the source).
    """
    cv2 = require("cv2", "faces")

    if fill is None:
        return cv2.warpAffine(image, np.asarray(m, dtype=np.float64), (size, size),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    value = [float(fill)] * 4 if np.isscalar(fill) else [float(v) for v in fill]
    return cv2.warpAffine(image, np.asarray(m, dtype=np.float64), (size, size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=value)


def crop_valid_fraction(shape: tuple[int, int], m: np.ndarray, size: int, probe: int = 64) -> float:
    """Fraction of a ``size`` crop (matrix ``m``) that lies inside a source of ``shape`` (H, W).

    Args:
        shape: source image (H, W).
        m: source-to-crop matrix for a ``size`` crop.
        size: crop side of ``m``.
        probe: side of the low-resolution crop on which the fraction is measured.
    """
    s = probe / size
    mp = np.asarray(m, dtype=np.float64) * s
    ones = np.ones(shape[:2], dtype=np.float32)
    return float(warp_to_crop(ones, mp, probe, fill=0.0).mean())


def fitting_padding(landmarks: np.ndarray, shape: tuple[int, int], max_padding: float = DEFAULT_PADDING,
                    min_padding: float = -0.1, min_valid: float = 0.97, step: float = 0.0125,
                    template_ordered: bool = False) -> float:
    """The largest template padding (<= ``max_padding``) whose crop stays inside the source.

    Tight crops (Extended Yale B: the face fills the photo) leave no room for the default
    margin: at padding 0.15 much of the crop lies outside the source. This is the padding
    chosen from the face's size: the largest value, in steps of ``step`` down to
    ``min_padding``, at which at least ``min_valid`` of the crop shows source pixels.

    Args:
        landmarks: the face's landmarks in source pixels, see :func:`alignment_matrix`.
        shape: source image (H, W).
        max_padding: the padding wanted when the source leaves room.
        min_padding: the smallest padding returned (0 = the ArcFace framing, 3.2 inter-ocular
            distances wide; -0.1 = 2.6, which keeps the cheeks and a little margin that face
            detectors need; what still lies outside the source is filled, see warp_to_crop).
        min_valid: fraction of the crop that must lie inside the source.
        step: search step.
        template_ordered: see :func:`alignment_matrix`.
    """
    p = max_padding
    while p > min_padding + 1e-9:
        m = alignment_matrix(landmarks, 256, p, template_ordered)
        if crop_valid_fraction(shape, m, 256) >= min_valid:
            return float(p)
        p -= step
    return float(min_padding)


def warp_from_crop(crop: np.ndarray, m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Warp a crop back into source image coordinates (zeros outside the crop).

    Args:
        crop: (S, S[, C]) array aligned with matrix ``m`` (source -> crop).
        m: the alignment matrix used to cut the crop.
        shape: (H, W) of the source image.
    """
    cv2 = require("cv2", "faces")

    h, w = shape[:2]
    return cv2.warpAffine(crop, np.asarray(m, dtype=np.float64), (w, h),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
