"""The LightningDataModule every model trains from, with a resumable, seeded data order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset


class ResumableSampler(Sampler[int]):
    """Seeded random order that can restart in the middle of an epoch.

    Epoch ``e`` visits ``randperm(n, seed + e)``; under DDP each rank takes every
    ``world_size``-th index of it (padded to equal length), like ``DistributedSampler``.
    :meth:`resume_at` makes the epoch it names skip the first ``k`` batches once more, so a
    run resumed from a mid-epoch checkpoint sees exactly the batches an uninterrupted run
    would have seen.

    Args:
        length: dataset size.
        seed: base seed of the order.
        shuffle: False visits the indices in order (still split across ranks).
        rank: this process's rank (0 without DDP).
        world_size: number of processes (1 without DDP).
    """

    def __init__(self, length: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        self.length, self.seed, self.shuffle = length, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self._resume: tuple[int, int] | None = None  # (epoch, samples to skip on this rank)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of each epoch."""
        self.epoch = epoch

    def resume_at(self, epoch: int, samples: int) -> None:
        """Skip the first ``samples`` indices (of this rank) of epoch ``epoch``."""
        self._resume = (epoch, samples)

    def _indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.length, generator=g).tolist()
        else:
            order = list(range(self.length))
        per_rank = -(-self.length // self.world_size)
        order += order[: per_rank * self.world_size - self.length]  # pad as DistributedSampler does
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        order = self._indices()
        if self._resume is not None and self._resume[0] == self.epoch:
            order = order[self._resume[1] :]
        return iter(order)

    def __len__(self) -> int:
        return -(-self.length // self.world_size)


class FaceDataModule(L.LightningDataModule):
    """Training and validation loaders over any dataset that follows genface's sample contract.

    Args:
        dataset: a Dataset, or a callable (e.g. a Hydra ``_partial_``) that builds one; it is
            built in :meth:`setup`, so that a config can be composed without rendering data.
        resolution: expected image side; a dataset of another size is an error.
        batch_size: images per batch and per process.
        num_workers: DataLoader worker processes (0 = load in the training process; the
            cached uint8 datasets are fast enough for that on CPU).
        val_size: images held out for validation (0 = no validation loader).
        seed: seed of the train/val split and of the data order.
        drop_last: drop the last incomplete batch of each epoch (GANs want equal batches).
        pin_memory: pin host memory for faster copies to CUDA.
        path: where the data lives, for configs that hand it to their dataset as ``${data.path}``
            (``data=folder data.path=...``); kept for the record, not read here. None = not used.
    """

    def __init__(self, dataset: Dataset | Callable[[], Dataset], resolution: int = 64, batch_size: int = 64,
                 num_workers: int = 0, val_size: int = 256, seed: int = 0, drop_last: bool = True,
                 pin_memory: bool = False, path: str | None = None):
        super().__init__()
        self.path = path
        self._dataset_factory = dataset
        self.resolution, self.batch_size, self.num_workers = resolution, batch_size, num_workers
        self.val_size, self.seed, self.drop_last, self.pin_memory = val_size, seed, drop_last, pin_memory
        self.dataset: Dataset | None = None
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self._sampler: ResumableSampler | None = None
        self._pending_resume: dict[str, int] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        ds = self._dataset_factory() if not isinstance(self._dataset_factory, Dataset) else self._dataset_factory
        self.check_dataset(ds, type(ds).__name__)
        self.dataset = ds
        self.train_set, self.val_set = self.split(ds)
        if len(self.train_set) < self.batch_size and self.drop_last:
            raise ValueError(
                f"the training set has {len(self.train_set)} images, fewer than one batch "
                f"(batch_size={self.batch_size}); lower data.batch_size or set data.drop_last=false"
            )

    def check_dataset(self, ds: Dataset, name: str) -> None:
        """Raise a clear error unless ``ds`` is non-empty, follows the sample contract and has
        ``resolution``-pixel images; ``name`` says which dataset in the message."""
        if len(ds) == 0:
            raise ValueError(f"{name}: the dataset is empty")
        first = ds[0]
        if not isinstance(first, dict) or "image" not in first:
            raise TypeError(f"{name} items must be dicts with an 'image' tensor (genface.data contract)")
        side = first["image"].shape[-1]
        if side != self.resolution:
            raise ValueError(f"{name} gives {side} px images but data.resolution={self.resolution}")

    def split(self, ds: Dataset, seed_offset: int = 0) -> tuple[Dataset, Dataset | None]:
        """(train, validation) subsets: ``min(val_size, len/10)`` images held out by a seeded
        permutation (seed + ``seed_offset``); no validation set when that is 0."""
        n = len(ds)
        val = min(self.val_size, n // 10)
        if not val:
            return ds, None
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + seed_offset)).tolist()
        return Subset(ds, perm[val:]), Subset(ds, perm[:val])

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None, "call setup() first"
        rank, world = 0, 1
        if self.trainer is not None:
            rank, world = self.trainer.global_rank, self.trainer.world_size
        if world > 1 and self.drop_last and -(-len(self.train_set) // world) < self.batch_size:
            raise ValueError(
                f"the training set has {len(self.train_set)} images: {-(-len(self.train_set) // world)} per "
                f"process over {world} processes, fewer than one batch (batch_size={self.batch_size} per "
                f"process); lower data.batch_size or use fewer devices"
            )
        self._sampler = ResumableSampler(len(self.train_set), seed=self.seed, rank=rank, world_size=world)
        if self._pending_resume is not None:
            self._sampler.resume_at(self._pending_resume["epoch"], self._pending_resume["batches"] * self.batch_size)
            self._pending_resume = None
        return self._loader(self.train_set, self._sampler, self.drop_last)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        sampler = None
        if self.trainer is not None and self.trainer.world_size > 1:  # DDP: each rank validates its shard
            sampler = ResumableSampler(len(self.val_set), shuffle=False, rank=self.trainer.global_rank,
                                       world_size=self.trainer.world_size)
        return self._loader(self.val_set, sampler, False)

    def _loader(self, ds: Dataset, sampler: Sampler | None, drop_last: bool) -> DataLoader:
        # The loader's own generator: creating an iterator (each epoch) then draws its worker
        # seed from it, not from the global RNG that training draws from, so a run resumed at
        # an epoch boundary continues exactly.
        return DataLoader(ds, batch_size=self.batch_size, sampler=sampler, shuffle=False, drop_last=drop_last,
                          num_workers=self.num_workers, pin_memory=self.pin_memory,
                          persistent_workers=self.num_workers > 0,
                          generator=torch.Generator().manual_seed(self.seed))

    # The position in the epoch travels in the checkpoint (Lightning saves a datamodule's state_dict).
    def state_dict(self) -> dict[str, Any]:
        if self.trainer is None:
            return {}
        # fit_loop internals (Lightning 2.x, no public equivalent; pyproject bounds lightning < 3)
        progress = self.trainer.fit_loop.epoch_loop.batch_progress.current
        return {"epoch": self.trainer.current_epoch, "batches": progress.processed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict:
            self._pending_resume = dict(state_dict)
