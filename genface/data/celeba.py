"""CelebA (Liu et al., "Deep Learning Face Attributes in the Wild", ICCV 2015) from local files.

Read through :class:`torchvision.datasets.CelebA` with ``download=False`` (genface never
downloads anything), centre-cropped to the usual 178x178 square of the 178x218 aligned
images, resized to the requested resolution and cached as a ``uint8`` tensor like
:class:`genface.data.folder.FolderFaces`.

CelebA is for non-commercial research only (see its agreement on the project page).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genface.data.folder import (
    _check_common,
    _UInt8FaceDataset,
    _warn_skipped,
    build_uint8_images,
    cached,
    file_stats,
    keyed_cache_file,
    load_face,
    subset_indices,
)
from genface.utils import require

# torchvision is the `vision` extra (not in the core install): a one-line message without it
CelebA = require("torchvision.datasets", feature="data=celeba").CelebA
check_integrity = require("torchvision.datasets.utils", feature="data=celeba").check_integrity

#: The splits of ``list_eval_partition.txt`` (``"all"`` = their union).
SPLITS: tuple[str, ...] = ("train", "valid", "test", "all")

#: Annotation files torchvision's CelebA reads (the zip of images may be deleted).
ANNOTATION_FILES: tuple[str, ...] = tuple(
    name for _, _, name in CelebA.file_list if not name.endswith((".zip", ".7z"))
)
IMAGE_FOLDER = "img_align_celeba"

LAYOUT = (
    "<root>/celeba/img_align_celeba/000001.jpg ... 202599.jpg   (from img_align_celeba.zip)\n"
    + "".join(f"<root>/celeba/{name}\n" for name in ANNOTATION_FILES)
)


class _CelebAWithoutMD5(CelebA):
    """torchvision's CelebA that only checks that the files exist, not their MD5 sums."""

    def _check_integrity(self) -> bool:
        base = Path(self.root, self.base_folder)
        return (base / IMAGE_FOLDER).is_dir() and all((base / n).is_file() for n in ANNOTATION_FILES)


def _missing_files(base: Path) -> list[str]:
    missing = [n for n in ANNOTATION_FILES if not (base / n).is_file()]
    if not (base / IMAGE_FOLDER).is_dir():
        missing.insert(0, IMAGE_FOLDER + "/")
    return missing


class CelebAFaces(_UInt8FaceDataset):
    """CelebA aligned faces with identity labels, decoded once into a cached ``uint8`` tensor.

    Each 178x218 aligned image is centre-cropped to ``crop_size`` x ``crop_size`` (178, the
    usual choice that keeps the whole face and drops the top and bottom 20 rows), then
    resized to ``resolution`` with an antialiased Lanczos filter.

    Samples: ``{"image": float32 (3, R, R) in [-1, 1], "identity": int64 scalar}`` where the
    identity is CelebA's own person number from ``identity_CelebA.txt`` (1..10177), the same
    in every split and subset.

    Files must already be on disk in torchvision's layout (nothing is downloaded)::

        <root>/celeba/img_align_celeba/000001.jpg ... 202599.jpg
        <root>/celeba/list_eval_partition.txt
        <root>/celeba/identity_CelebA.txt
        <root>/celeba/list_attr_celeba.txt
        <root>/celeba/list_bbox_celeba.txt
        <root>/celeba/list_landmarks_align_celeba.txt

    Args:
        root: the folder that contains ``celeba/`` (a path to ``celeba/`` itself is accepted).
        split: ``"train"``, ``"valid"``, ``"test"`` or ``"all"`` (``list_eval_partition.txt``).
        resolution: side ``R`` of the square output images, in pixels.
        crop_size: side of the centred square cut from each image before resizing, in
            original pixels; ``None`` = the largest centred square (178 on CelebA too).
        max_images: keep a deterministic random subset of this many images of the split
            (drawn with ``seed``, kept in file order); ``None`` keeps them all.
        seed: seed of the ``max_images`` draw.
        skip_bad: ``True`` skips unreadable or missing image files, counting them
            (:attr:`num_skipped`, :attr:`skipped_files`) with one warning; ``False`` raises
            :class:`~genface.data.folder.BadImageError` naming the file.
        check_md5: ``True`` lets torchvision verify the annotation files' MD5 sums (the
            official files pass); ``False`` only checks that they exist, for re-exported
            copies with the same content format.
        cache: ``True`` saves the preprocessed tensor under ``cache_dir`` and reloads it next
            time; ``False`` keeps it in memory only.
        cache_dir: folder of cache files; ``None`` = ``$GENFACE_CACHE/celeba`` or
            ``~/.cache/genface/celeba``.
        progress: show a progress bar while decoding.
        num_workers: decoding threads; ``None`` = ``min(8, cpu_count)``, ``0`` = none.

    Attributes:
        images, identities, files, skipped_files, num_skipped, cache_file, from_cache: as in
            :class:`~genface.data.folder.FolderFaces`.

    Raises:
        FileNotFoundError: files are missing; the message lists them and the layout above.
        RuntimeError: the annotation files fail torchvision's MD5 check (``check_md5=True``);
            the message names them.
        ValueError: a bad argument.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        resolution: int = 64,
        crop_size: int | None = 178,
        max_images: int | None = None,
        seed: int = 0,
        skip_bad: bool = False,
        check_md5: bool = True,
        cache: bool = True,
        cache_dir: str | Path | None = None,
        progress: bool = True,
        num_workers: int | None = None,
    ):
        _check_common(resolution, max_images)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        if crop_size is not None and (not isinstance(crop_size, int) or crop_size < 1):
            raise ValueError(f"crop_size must be a positive int or None, got {crop_size!r}")
        root = Path(root).expanduser().absolute()
        if root.name == CelebA.base_folder and (root / IMAGE_FOLDER).is_dir():
            root = root.parent  # the user pointed at celeba/ itself
        base = root / CelebA.base_folder
        missing = _missing_files(base)
        if missing:
            raise FileNotFoundError(
                f"CelebAFaces: CelebA not found under '{root}': missing "
                f"{', '.join(missing)} in '{base}'. genface does not download data sets; get "
                "the 'Align&Cropped Images' (img_align_celeba.zip, unzipped) and the "
                "annotation files from the CelebA project page "
                "(https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html) and arrange them as\n"
                + LAYOUT
            )
        cls = CelebA if check_md5 else _CelebAWithoutMD5
        try:
            tv = cls(str(root), split=split, target_type="identity", download=False)
        except RuntimeError as e:
            bad = [n for _, md5, n in CelebA.file_list
                   if n in ANNOTATION_FILES and not check_integrity(str(base / n), md5)]
            raise RuntimeError(
                f"CelebAFaces: the annotation files {bad} in '{base}' fail torchvision's MD5 "
                "check: they are not the official CelebA files. Replace them, or pass "
                "check_md5=False to use them as they are."
            ) from e

        if len(tv.filename) == 0:
            raise ValueError(f"CelebAFaces: split {split!r} lists no image in "
                             f"'{base / 'list_eval_partition.txt'}'")
        chosen = subset_indices(len(tv.filename), max_images, seed)
        names = [tv.filename[i] for i in chosen]
        person = tv.identity[:, 0]
        ids = [int(person[i]) for i in chosen]
        image_dir = base / IMAGE_FOLDER
        files = [image_dir / n for n in names]
        key, cache_file = keyed_cache_file("celeba", f"celeba-{split}", resolution, {
            "dataset": "CelebAFaces", "root": str(root), "split": split, "files": file_stats(files, names),
            "identities": ids, "resolution": resolution, "crop_size": crop_size,
            "max_images": max_images, "seed": seed, "skip_bad": skip_bad,
        }, cache, cache_dir)

        def build() -> dict[str, Any]:
            images, bad = build_uint8_images(
                files, lambda p: load_face(p, resolution, crop=crop_size), resolution,
                skip_bad=skip_bad, progress=progress, num_workers=num_workers,
                description=f"caching CelebA {split} at {resolution}px",
            )
            bad_set = set(bad)
            keep = [i for i in range(len(files)) if i not in bad_set]
            return {
                "images": images,
                "files": [names[i] for i in keep],
                "identities": torch.tensor([ids[i] for i in keep], dtype=torch.int64),
                "skipped": [names[i] for i in bad],
            }

        data, self.from_cache = cached(cache_file, key, build)
        self.root = root
        self.split = split
        self.resolution = resolution
        self.cache_file = cache_file
        self.images = data["images"]
        self.identities = data["identities"]
        self.files = [image_dir / n for n in data["files"]]
        self.skipped_files = [image_dir / n for n in data["skipped"]]
        if len(self.files) == 0:
            raise ValueError(
                f"CelebAFaces: no readable image in split {split!r} under '{image_dir}' "
                f"({len(self.skipped_files)} skipped)"
            )
        _warn_skipped("CelebAFaces", image_dir, self.skipped_files)

    @property
    def num_skipped(self) -> int:
        """How many image files ``skip_bad`` left out."""
        return len(self.skipped_files)

    def __repr__(self) -> str:
        return (f"CelebAFaces(root='{self.root}', split={self.split!r}, n={len(self)}, "
                f"resolution={self.resolution}, skipped={self.num_skipped})")
