"""The datamodule of FaceSwap training: A/B pairs, with the resumable data order of
:class:`~genface.data.datamodule.FaceDataModule`.

Two ways to say where the faces come from:

* two datasets, one per identity (``data=swap_pair``: two folders of aligned faces,
  ``data.dir_a`` and ``data.dir_b``);
* one labelled dataset and two identity labels (``data=synthetic_swap``: identities 0 and 1
  of :class:`~genface.data.synthetic.SyntheticFaces`; any dataset whose items carry
  ``"identity"`` works). On :class:`SyntheticFaces` the exact ground truth of a swap can be
  rendered: :meth:`SwapDataModule.swap_eval_set`.

Batches are dicts of ``image_a``/``image_b`` (float (P, 3, H, W) in [-1, 1]) and
``identity_a``/``identity_b``, see :class:`~genface.faces.pairs.SwapPairDataset`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from genface.data.datamodule import FaceDataModule

__all__ = ["SwapDataModule"]

DatasetLike = Dataset | Callable[[], Dataset]


def _build(ds: DatasetLike | None) -> Dataset | None:
    if ds is None or isinstance(ds, Dataset):
        return ds
    return ds()


def _identities(ds: Dataset) -> torch.Tensor:
    ids = getattr(ds, "identities", None)
    if isinstance(ids, torch.Tensor) and ids.shape == (len(ds),):
        return ids
    return torch.tensor([int(ds[i].get("identity", -1)) for i in range(len(ds))], dtype=torch.int64)


class SwapDataModule(FaceDataModule):
    """A/B face pairs for :class:`~genface.training.faceswap.FaceSwapModule`.

    Each side is split into training and validation faces (seeded); training pairs come from
    a :class:`~genface.faces.pairs.SwapPairDataset` over the training faces, visited in the
    order of a :class:`~genface.data.datamodule.ResumableSampler`, so a resumed run sees the
    same batches as an uninterrupted one.

    Args:
        dataset: one labelled dataset (or a callable building it, e.g. a Hydra ``_partial_``)
            from which the faces of ``identity_a`` and ``identity_b`` are taken; None = use
            ``dataset_a`` and ``dataset_b``.
        dataset_a: faces of identity A (dataset or callable); used when ``dataset`` is None.
        dataset_b: faces of identity B (dataset or callable); used when ``dataset`` is None.
        identity_a: identity label of A within ``dataset`` (trained with decoder A); ignored
            with ``dataset_a``/``dataset_b``.
        identity_b: identity label of B within ``dataset``; ignored likewise.
        dir_a: folder of A's faces, for configs that hand it to ``dataset_a`` as
            ``${data.dir_a}``; checked to exist in :meth:`setup` (a clear error instead of an
            empty dataset), otherwise not read here. None = not used.
        dir_b: folder of B's faces, likewise.
        path: root of a single ``dataset`` for configs that use ``${data.path}`` (e.g.
            ``data=folder`` under the FaceSwap compare preset); kept for the record. None =
            not used.
        length: training pairs per epoch; None = the larger side's number of training faces.
        resolution: expected image side; a dataset of another size is an error.
        batch_size: faces per batch, half of A and half of B (faceswap's per-side batch is
            ``batch_size / 2``), so a step sees as many images as a step of the other
            models with the same ``data.batch_size``; must be even.
        num_workers: DataLoader worker processes (0 = load in the training process).
        val_size: faces held out for validation on each side, at most a tenth of that side
            (0 = no validation loader).
        seed: seed of the train/val split, the pair draws and the data order.
        drop_last: drop the last incomplete batch of each epoch.
        pin_memory: pin host memory for faster copies to CUDA.
    """

    def __init__(self, dataset: DatasetLike | None = None, dataset_a: DatasetLike | None = None,
                 dataset_b: DatasetLike | None = None, identity_a: int = 0, identity_b: int = 1,
                 dir_a: str | None = None, dir_b: str | None = None, path: str | None = None,
                 length: int | None = None, resolution: int = 64, batch_size: int = 32,
                 num_workers: int = 0, val_size: int = 64, seed: int = 0, drop_last: bool = True,
                 pin_memory: bool = False):
        if batch_size < 2 or batch_size % 2:
            raise ValueError(f"batch_size counts A and B faces together and must be even and >= 2, "
                             f"got {batch_size}")
        if dataset is None and (dataset_a is None or dataset_b is None):
            raise ValueError("give either dataset (with identity_a/identity_b) or both dataset_a and dataset_b")
        if dataset is not None and (dataset_a is not None or dataset_b is not None):
            raise ValueError("give either dataset or dataset_a/dataset_b, not both")
        if identity_a == identity_b and dataset is not None:
            raise ValueError(f"identity_a and identity_b must differ, both are {identity_a}")
        # The parent counts its batch in sampler items: here one item is one A/B pair.
        super().__init__(dataset, resolution=resolution, batch_size=batch_size // 2,
                         num_workers=num_workers, val_size=val_size, seed=seed,
                         drop_last=drop_last, pin_memory=pin_memory)
        self.faces_per_batch = batch_size
        self._factory_a, self._factory_b = dataset_a, dataset_b
        self.identity_a, self.identity_b = int(identity_a), int(identity_b)
        self.dir_a, self.dir_b, self.path = dir_a, dir_b, path
        self.length = length
        self.faces_a: Dataset | None = None
        self.faces_b: Dataset | None = None
        self.synthetic = None  # the SyntheticFaces behind the pairs, when there is one

    # -- setup ---------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        from genface.data.synthetic import SyntheticFaces
        from genface.faces.pairs import SwapPairDataset

        if self.dataset is not None:
            return
        if self._dataset_factory is not None:
            ds = _build(self._dataset_factory)
            ids = _identities(ds)
            sides = []
            for side, k in (("A", self.identity_a), ("B", self.identity_b)):
                idx = (ids == k).nonzero().flatten().tolist()
                if not idx:
                    known = sorted(set(ids.tolist()) - {-1})
                    raise ValueError(f"identity_{side.lower()}={k} has no face in {type(ds).__name__} "
                                     f"(labels present: {known[:20]}{' ...' if len(known) > 20 else ''}); "
                                     "FaceSwap on one dataset needs identity labels")
                sides.append(Subset(ds, idx))
            faces_a, faces_b = sides
            self.synthetic = ds if isinstance(ds, SyntheticFaces) else None
        else:
            for name, d in (("dir_a", self.dir_a), ("dir_b", self.dir_b)):
                if d is not None and not Path(d).expanduser().is_dir():
                    raise FileNotFoundError(f"data.{name}={d} is not a folder (extract faces into it with "
                                            "genface-extract, see docs/tutorial-swap.md)")
            faces_a, faces_b = _build(self._factory_a), _build(self._factory_b)
        self.check_dataset(faces_a, "the A faces")
        self.check_dataset(faces_b, "the B faces")
        train_a, val_a = self.split(faces_a, 0)
        train_b, val_b = self.split(faces_b, 1)
        self.faces_a, self.faces_b = faces_a, faces_b
        self.train_set = SwapPairDataset(train_a, train_b, length=self.length, seed=self.seed)
        self.val_set = (SwapPairDataset(val_a, val_b, seed=self.seed + 1)
                        if val_a is not None and val_b is not None else None)
        if len(self.train_set) < self.batch_size and self.drop_last:
            raise ValueError(
                f"{len(self.train_set)} training pairs are fewer than one batch of {self.batch_size} "
                f"pairs (data.batch_size={self.faces_per_batch} faces); lower data.batch_size, raise "
                "data.length or set data.drop_last=false")
        # The A faces follow the sample contract: the reference of genface-compare's
        # reconstruction metrics (FaceSwapModule.metric_inputs reconstructs with decoder A).
        self.dataset = faces_a

    # -- evaluation --------------------------------------------------------------------
    def swap_eval_set(self, num: int = 256) -> dict[str, torch.Tensor] | None:
        """Faces of A and B in ``num`` poses no training face has, with the exact swaps.

        Only on :class:`~genface.data.synthetic.SyntheticFaces` (None otherwise); see
        :func:`genface.faces.pairs.synthetic_swap_eval_set` for the keys.
        """
        from genface.faces.pairs import synthetic_swap_eval_set

        if self.dataset is None:
            self.setup()
        if self.synthetic is None:
            return None
        return synthetic_swap_eval_set(self.synthetic, self.identity_a, self.identity_b, num)
