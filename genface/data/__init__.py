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
