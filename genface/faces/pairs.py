"""Moved to :mod:`genface.data.pairs` (A/B pair datasets are data); this name stays for old imports.

The names are imported on first use, so that importing ``genface.faces`` never imports
``genface.data`` (data sits above faces).
"""

_MOVED = ("SwapPairDataset", "synthetic_swap_pairs", "synthetic_swap_ground_truth", "synthetic_swap_eval_set")


def __getattr__(name: str):
    if name in _MOVED:
        from genface.data import pairs

        return getattr(pairs, name)
    raise AttributeError(f"module 'genface.faces.pairs' has no attribute {name!r}")
