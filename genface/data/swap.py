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
``identity_a``/``identity_b``, see :class:`~genface.data.pairs.SwapPairDataset`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from genface.data.datamodule import FaceDataModule

__all__ = ["SwapDataModule", "WithLandmarks", "condition_key"]


def condition_key(path) -> str:
    """The capture conditions in a face file's name: its stem without the identity (the text
    before the first ``_``) and without genface-extract's ``_<frame>_<face>`` tail.

    ``yaleB12_P00A+010E-20_000031_0.png`` -> ``P00A+010E-20`` (Extended Yale B's pose and
    light); a name without an identity part is kept whole (``3_000002_0.png`` -> ``3``).
    """
    import re

    stem = re.sub(r"_\d{6}_\d+$", "", Path(path).stem)
    return stem.split("_", 1)[1] if "_" in stem else stem


class WithLandmarks(Dataset):
    """A folder dataset of genface-extract crops, with each crop's 68 landmarks added.

    Items gain ``"landmarks"``: float32 ``(68, 2)`` in pixels of the dataset's images, read
    from the ``alignments.json`` that genface-extract wrote beside the ``faces/`` folder
    (``crop_landmarks``, scaled from the crop size to the dataset's resolution). They drive
    the eye/mouth loss weighting and the landmark mask of
    :class:`~genface.training.faceswap.FaceSwapModule`.

    Args:
        dataset: a :class:`~genface.data.folder.FolderFaces` over a ``faces/`` folder.
        alignments: path of the ``alignments.json``; None = ``<root>/../alignments.json``.

    Raises:
        FileNotFoundError: no alignments file. ValueError: a crop has no 68-point landmarks.
    """

    def __init__(self, dataset, alignments: str | Path | None = None):
        import json

        root = Path(dataset.root)
        path = Path(alignments) if alignments is not None else root.parent / "alignments.json"
        if not path.is_file():
            raise FileNotFoundError(f"no {path}: data.landmarks needs the alignments.json of genface-extract")
        doc = json.loads(path.read_text())
        scale = dataset.resolution / float(doc["size"])
        by_name = {Path(f["file"]).name: f.get("crop_landmarks") for f in doc["faces_list"]}
        rows = []
        for f in dataset.files:
            lm = by_name.get(Path(f).name)
            if lm is None or len(lm) != 68:
                raise ValueError(f"{f}: no 68-point landmarks in {path} (extract with --landmarks 68)")
            rows.append(lm)
        self.dataset = dataset
        self.landmarks = torch.tensor(rows, dtype=torch.float32) * scale
        self.files = dataset.files

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        return {**self.dataset[i], "landmarks": self.landmarks[i]}


def _folder_and_indices(ds):
    """(the FolderFaces-like dataset with ``files`` under Subsets, the indices into it)."""
    idx = list(range(len(ds))) if ds is not None else []
    while isinstance(ds, Subset):
        idx = [ds.indices[i] for i in idx]
        ds = ds.dataset
    return (ds, idx) if ds is not None and hasattr(ds, "files") else (None, [])

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
    a :class:`~genface.data.pairs.SwapPairDataset` over the training faces, visited in the
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
        val_fraction: the validation faces of a side are at most this fraction of it (the
            held-out faces the swap metrics judge; 0.1 as every genface datamodule).
        gallery_dir: a folder with one sub-folder of aligned faces per identity of the set
            (A's and B's among them): the labelled gallery of the ID retrieval metric
            (:mod:`genface.metrics.swap`). Held-out faces are left out of it. None = no
            gallery (the dlib swap metrics are not run).
        gallery_identity_a: the gallery sub-folder of A; None = the first folder of
            ``dir_a`` below ``gallery_dir``.
        gallery_identity_b: likewise for B.
        gallery_max_per_identity: at most this many gallery faces per identity (a seeded
            draw); None = all.
        video_dir: a folder of aligned crops of consecutive frames of A (``genface-extract``
            of a video), swapped for the temporal-consistency metric; None = none.
        landmarks: give the faces of folder sides their 68 landmarks from genface-extract's
            ``alignments.json`` beside each ``faces/`` folder (:class:`WithLandmarks`): the
            eye x3 / mouth x2 loss weighting of faceswap and the landmark-hull mask target;
            False = none (the weighting is then off).
    """

    def __init__(self, dataset: DatasetLike | None = None, dataset_a: DatasetLike | None = None,
                 dataset_b: DatasetLike | None = None, identity_a: int = 0, identity_b: int = 1,
                 dir_a: str | None = None, dir_b: str | None = None, path: str | None = None,
                 length: int | None = None, resolution: int = 64, batch_size: int = 32,
                 num_workers: int = 0, val_size: int = 64, seed: int = 0, drop_last: bool = True,
                 pin_memory: bool = False, val_fraction: float = 0.1, gallery_dir: str | None = None,
                 gallery_identity_a: str | None = None, gallery_identity_b: str | None = None,
                 gallery_max_per_identity: int | None = None, video_dir: str | None = None,
                 landmarks: bool = False):
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
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
        self.val_fraction = float(val_fraction)
        self.gallery_dir, self.video_dir = gallery_dir, video_dir
        self.gallery_identity_a, self.gallery_identity_b = gallery_identity_a, gallery_identity_b
        self.gallery_max_per_identity = gallery_max_per_identity
        self.landmarks = bool(landmarks)
        self.val_a: Dataset | None = None
        self.val_b: Dataset | None = None
        self._swap_eval = None
        self.faces_a: Dataset | None = None
        self.faces_b: Dataset | None = None
        self.synthetic = None  # the SyntheticFaces behind the pairs, when there is one

    # -- setup ---------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        from genface.data.pairs import SwapPairDataset
        from genface.data.synthetic import SyntheticFaces

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
            if self.landmarks:
                faces_a, faces_b = WithLandmarks(faces_a), WithLandmarks(faces_b)
        self.check_dataset(faces_a, "the A faces")
        self.check_dataset(faces_b, "the B faces")
        train_a, val_a = self.split(faces_a, 0)
        train_b, val_b = self.split(faces_b, 1)
        self.faces_a, self.faces_b = faces_a, faces_b
        self.val_a, self.val_b = val_a, val_b
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

    def split(self, ds: Dataset, seed_offset: int = 0) -> tuple[Dataset, Dataset | None]:
        """(train, validation): ``min(val_size, val_fraction * len)`` faces held out (seeded)."""
        n = len(ds)
        val = min(self.val_size, int(n * self.val_fraction))
        if not val:
            return ds, None
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + seed_offset)).tolist()
        return Subset(ds, perm[val:]), Subset(ds, perm[:val])

    # -- evaluation --------------------------------------------------------------------
    def swap_eval_data(self, num: int = 64):
        """The held-out faces the swap metrics judge (:class:`genface.metrics.swap.SwapEvalSet`).

        * SyntheticFaces: ``num`` poses no training face has, rendered as A and as B, with the
          exact swaps and the exact factors.
        * Folders: the validation faces of A and B; with ``gallery_dir`` the labelled gallery
          of every identity of the set (held-out faces and the baseline photos left out)
          and, per face of A, a real photo of B in the same conditions (same file name after
          the identity, as Extended Yale B's lighting codes); with ``video_dir`` its frames.

        None when there is nothing to judge (no validation faces and no synthetic set).
        """
        if self.dataset is None:
            self.setup()
        if self._swap_eval is not None:
            return self._swap_eval
        from genface.metrics.swap import SwapEvalSet

        if self.synthetic is not None:
            from genface.data.pairs import synthetic_swap_eval_set
            from genface.data.synthetic import encode_factors

            ev = synthetic_swap_eval_set(self.synthetic, self.identity_a, self.identity_b, num)
            syn = self.synthetic
            start = len(syn)
            from genface.data.synthetic import sample_expression_pose

            poses = [sample_expression_pose(syn.seed, start + k) for k in range(num)]
            ida, idb = syn.identity_params(self.identity_a), syn.identity_params(self.identity_b)
            fa = torch.stack([encode_factors(ida, p) for p in poses])
            fb = torch.stack([encode_factors(idb, p) for p in poses])
            self._swap_eval = SwapEvalSet(
                faces_a=ev["image_a"] * 2 - 1, faces_b=ev["image_b"] * 2 - 1,
                truth_a_as_b=ev["a_as_b"] * 2 - 1, truth_b_as_a=ev["b_as_a"] * 2 - 1,
                factors_a=fa, factors_b=fb, factor_names=list(syn.factor_names))
            return self._swap_eval
        if self.val_a is None or self.val_b is None:
            return None
        faces_a = torch.stack([self.val_a[i]["image"] for i in range(len(self.val_a))]).float()
        faces_b = torch.stack([self.val_b[i]["image"] for i in range(len(self.val_b))]).float()
        ev = SwapEvalSet(faces_a=faces_a, faces_b=faces_b)
        if self.gallery_dir is not None:
            self._add_gallery(ev)
        if self.video_dir is not None:
            from genface.data.folder import FolderFaces

            vid = FolderFaces(self.video_dir, resolution=self.resolution, skip_bad=True, progress=False)
            ev.video_a = vid.images.float() / 127.5 - 1
        self._swap_eval = ev
        return ev

    def _add_gallery(self, ev) -> None:
        from genface.data.folder import FolderFaces

        root = Path(self.gallery_dir).expanduser().absolute()
        gal = FolderFaces(root, resolution=self.resolution, labels="subfolders", skip_bad=True, progress=False)

        def name_of(side: str, explicit: str | None) -> str:
            if explicit is not None:
                return explicit
            d = getattr(self, f"dir_{side}")
            try:
                return Path(d).expanduser().absolute().relative_to(root).parts[0]
            except (TypeError, ValueError):
                raise ValueError(f"data.gallery_identity_{side} is needed: data.dir_{side}={d} is not "
                                 f"below data.gallery_dir={root}") from None

        names = {"a": name_of("a", self.gallery_identity_a), "b": name_of("b", self.gallery_identity_b)}
        for side, n in names.items():
            if n not in gal.class_names:
                raise ValueError(f"gallery identity {n!r} ({side.upper()}) is not a sub-folder of {root}: "
                                 f"{gal.class_names}")
        label_a, label_b = gal.class_names.index(names["a"]), gal.class_names.index(names["b"])
        files_of = {}
        for side, val in (("a", self.val_a), ("b", self.val_b)):
            base, idx = _folder_and_indices(val)
            files_of[side] = [Path(base.files[i]).resolve() for i in idx] if base is not None else []
        exclude = {*files_of["a"], *files_of["b"]}
        # a real photo of B in the conditions of each held-out face of A
        base_b, _ = _folder_and_indices(self.faces_b)
        if base_b is not None and files_of["a"]:
            by_key = {}
            for i, f in enumerate(base_b.files):
                by_key.setdefault(condition_key(f), i)
            rows = [by_key.get(condition_key(f)) for f in files_of["a"]]
            valid = torch.tensor([r is not None for r in rows])
            if valid.any():
                imgs = torch.stack([base_b[r]["image"] if r is not None else torch.zeros_like(ev.faces_a[0])
                                    for r in rows]).float()
                ev.b_like_a, ev.b_valid = imgs, valid
                exclude |= {Path(base_b.files[r]).resolve() for r in rows if r is not None}
        keep = [i for i, f in enumerate(gal.files) if Path(f).resolve() not in exclude]
        if self.gallery_max_per_identity:
            g = torch.Generator().manual_seed(self.seed)
            chosen = []
            for k in range(len(gal.class_names)):
                ids = [i for i in keep if int(gal.identities[i]) == k]
                perm = torch.randperm(len(ids), generator=g).tolist()[: self.gallery_max_per_identity]
                chosen += sorted(ids[j] for j in perm)
            keep = sorted(chosen)
        ev.gallery = gal.images[keep].float() / 127.5 - 1
        ev.gallery_labels = gal.identities[keep].clone()
        ev.label_a, ev.label_b = label_a, label_b

    def swap_eval_set(self, num: int = 256) -> dict[str, torch.Tensor] | None:
        """Faces of A and B in ``num`` poses no training face has, with the exact swaps.

        Only on :class:`~genface.data.synthetic.SyntheticFaces` (None otherwise); see
        :func:`genface.data.pairs.synthetic_swap_eval_set` for the keys.
        """
        from genface.data.pairs import synthetic_swap_eval_set

        if self.dataset is None:
            self.setup()
        if self.synthetic is None:
            return None
        return synthetic_swap_eval_set(self.synthetic, self.identity_a, self.identity_b, num)
