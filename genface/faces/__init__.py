"""Offline faces pipeline: detection, landmarks, alignment, extraction, swapping, metrics.

dlib (``pip install 'genface[faces]'``) gives HOG/CNN detection, 5/68-point landmarks and
128-d identity descriptors; without it OpenCV's Haar cascade is the fallback (landmarks
estimated from the box). dlib and OpenCV are imported only when a detector or warp is
used. Extraction, conversion and metrics live in :mod:`genface.faces.extract`,
:mod:`genface.faces.convert` and :mod:`genface.faces.metrics`.
"""

from genface.faces.align import (
    DEFAULT_PADDING,
    alignment_matrix,
    invert_affine,
    transform_points,
    umeyama,
    warp_from_crop,
    warp_to_crop,
)
from genface.faces.detect import Face, FaceDetector, FaceEmbedder, dlib_available
from genface.faces.io import MediaError, VideoReader, VideoWriter

__all__ = [
    "DEFAULT_PADDING",
    "alignment_matrix",
    "invert_affine",
    "transform_points",
    "umeyama",
    "warp_from_crop",
    "warp_to_crop",
    "Face",
    "FaceDetector",
    "FaceEmbedder",
    "dlib_available",
    "MediaError",
    "VideoReader",
    "VideoWriter",
    "SwapPairDataset",
]


def __getattr__(name: str):
    """``SwapPairDataset`` moved to :mod:`genface.data.pairs`; imported on first use so that
    ``genface.faces`` does not import ``genface.data`` (data sits above faces)."""
    if name == "SwapPairDataset":
        from genface.data.pairs import SwapPairDataset

        return SwapPairDataset
    raise AttributeError(f"module 'genface.faces' has no attribute {name!r}")
