"""Offline faces pipeline: detection, landmarks, alignment, extraction, swapping, metrics.

dlib (``pip install 'genface[faces]'``) gives HOG/CNN detection, 5/68-point landmarks and
128-d identity descriptors; without it OpenCV's Haar cascade is the fallback (landmarks
estimated from the box). dlib and OpenCV are imported only when a detector or warp is
used. Extraction, conversion and metrics live in :mod:`genface.faces.extract`,
:mod:`genface.faces.convert` and :mod:`genface.faces.metrics`.
"""

# Names resolved on first use (PEP 562), so that importing a light submodule (the CLIs'
# option lists: genface-extract/genface-swap --help) does not import torch.
_LAZY = {
    "DEFAULT_PADDING": "align", "alignment_matrix": "align", "invert_affine": "align",
    "transform_points": "align", "umeyama": "align", "warp_from_crop": "align", "warp_to_crop": "align",
    "Face": "detect", "FaceDetector": "detect", "FaceEmbedder": "detect", "dlib_available": "detect",
    "MediaError": "io", "VideoReader": "io", "VideoWriter": "io",
    "SwapPairDataset": "genface.data.pairs",  # moved to genface.data
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        mod = _LAZY[name] if "." in _LAZY[name] else f"genface.faces.{_LAZY[name]}"
        return getattr(importlib.import_module(mod), name)
    raise AttributeError(f"module 'genface.faces' has no attribute {name!r}")


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

