"""Datasets and datamodules.

Sample contract (every dataset in this package follows it, so that every model can train
on every dataset):

* ``__getitem__`` returns a ``dict`` with
  ``"image"``: ``float32`` tensor ``(3, H, W)`` in ``[-1, 1]``;
  ``"identity"``: ``int64`` scalar tensor, the identity label or ``-1`` when unknown;
  and optionally dataset-specific extras of fixed shape (``"factors"`` for
  :class:`SyntheticFaces`).
* datasets hold a preprocessed ``uint8`` cache so that epochs never decode files again.
"""

from importlib import import_module

_EXPORTS = {
    "FaceDataModule": "genface.data.datamodule",
    "ResumableSampler": "genface.data.datamodule",
    "SyntheticFaces": "genface.data.synthetic",
    "FolderFaces": "genface.data.folder",
    "CelebAFaces": "genface.data.celeba",
    "OlivettiFaces": "genface.data.folder",
    "SwapPairDataset": "genface.data.pairs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'genface.data' has no attribute {name!r}; available: {__all__}")
