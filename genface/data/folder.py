"""Real-face datasets read from disk: any folder of face images, and Olivetti.

Both follow the sample contract of :mod:`genface.data` and hold a preprocessed ``uint8``
tensor ``(N, 3, H, W)`` so that an epoch never decodes an image file again.

:class:`FolderFaces` decodes every file once (in a thread pool; Pillow releases the GIL while
decoding and resizing), stores the result under a cache folder and reloads it on the next
construction. The cache file is keyed by the folder's absolute path, the list of files with
their sizes and modification times, the resolution and every option that changes the pixels
or the selection, so editing, adding or removing a file rebuilds it.

The helpers here (:func:`load_face`, :func:`build_uint8_images`, :func:`cached`,
:func:`subset_indices`, :func:`default_cache_dir`) are shared with
:mod:`genface.data.celeba`.

Use only data that its subjects consented to for research use, under the data set's terms
(see ``docs/data-real.md``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch.utils.data import Dataset

from genface.errors import BadImageError, DataFolderError
from genface.utils import atomic_path
from genface.utils import cache_dir as genface_cache_dir

#: File extensions :class:`FolderFaces` picks up (compared case-insensitively).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".bmp", ".webp")

#: Version of the on-disk cache layout; bump it to invalidate every existing cache.
CACHE_FORMAT = 1

#: Valid values of ``FolderFaces(labels=...)``.
LABEL_MODES: tuple[str | None, ...] = (None, "subfolders")


def file_stats(files: list[Path], names: list[str]) -> list[tuple[str, int, int]]:
    """``(name, size, mtime_ns)`` of each file (``-1, -1`` for a missing one): what a cache key
    needs to notice that a dataset's files changed."""
    out = []
    for name, p in zip(names, files):
        st = p.stat() if p.is_file() else None
        out.append((name, st.st_size if st else -1, st.st_mtime_ns if st else -1))
    return out


def keyed_cache_file(kind: str, stem: str, resolution: int, payload: dict[str, Any], cache: bool = True,
                     cache_dir: str | Path | None = None) -> tuple[str, Path | None]:
    """The cache key of ``payload`` and the cache file ``<cache_dir>/<stem>-<res>px-<key>.pt``.

    One keying for every dataset cache (folder, CelebA).

    Args:
        kind: the cache sub-folder under the genface cache (``"folder"``, ``"celeba"``).
        stem: the file name's prefix.
        resolution: the images' side (in the name, for people reading the folder).
        payload: everything the cache depends on (see :func:`cache_key`).
        cache: False = no file (the key is still returned).
        cache_dir: a folder instead of ``default_cache_dir(kind)``.
    """
    key = cache_key(payload)
    if not cache:
        return key, None
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir(kind)
    return key, folder / f"{stem}-{resolution}px-{key[:20]}.pt"


def default_cache_dir(kind: str) -> Path:
    """Folder where datasets of ``kind`` (``"folder"``, ``"celeba"``) keep their caches.

    ``$GENFACE_CACHE/<kind>`` when the environment variable ``GENFACE_CACHE`` is set (it names
    genface's cache root), else ``~/.cache/genface/<kind>``.
    """
    return genface_cache_dir(kind, create=False)


# --------------------------------------------------------------------------------------------
# Decoding one file
# --------------------------------------------------------------------------------------------


def _to_rgb(im: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB.

    Greyscale is replicated on the three channels; 16-bit greyscale (``I;16*``) is scaled by
    1/257 so that 65535 maps to 255 (a plain ``convert`` would clip it); 32-bit integer
    images (``I``) are scaled the same way when their maximum exceeds 255; float images
    (``F``) in [0, 1] are scaled by 255. Palette images are expanded. Images with an alpha
    channel (or a palette / ``tRNS`` transparency) are composited over ``background``.
    """
    mode = im.mode
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(im).astype(np.float32)
        if mode.startswith("I;16") or (mode == "I" and arr.size and arr.max() > 255):
            arr = arr / 257.0
        elif mode == "F" and arr.size and arr.max() <= 1.0:
            arr = arr * 255.0
        im = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
        mode = im.mode
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in im.info
    if not has_alpha:
        return im.convert("RGB")
    rgba = im.convert("RGBA")
    base = Image.new("RGBA", rgba.size, (*background, 255))
    return Image.alpha_composite(base, rgba).convert("RGB")


def load_face(
    path: str | Path,
    resolution: int,
    crop: int | None = None,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Decode one image file into a ``(resolution, resolution, 3)`` ``uint8`` RGB array.

    Steps: open; for JPEG ask the decoder for a reduced size with :meth:`PIL.Image.Image.draft`
    (DCT scaling by 1/2, 1/4 or 1/8, never below twice what the crop needs), so huge photos
    decode cheaply; apply the EXIF orientation (:func:`PIL.ImageOps.exif_transpose`); convert to RGB
    (see :func:`_to_rgb`); take the centred square and resize it to ``resolution`` with an
    antialiased Lanczos filter. Without ``crop`` the square's side is the shorter side and the
    result equals "resize the shorter side to ``resolution``, then centre-crop"; with ``crop``
    the square is cut first, then resized (CelebA's usual recipe).

    Args:
        path: image file.
        resolution: output side in pixels.
        crop: side, in pixels of the original file, of the centred square to keep before
            resizing (CelebA's usual 178); clipped to the shorter side. ``None`` keeps the
            largest centred square.
        background: RGB colour that transparent pixels are composited over.

    Raises:
        BadImageError: the file is empty, truncated, not an image Pillow can read, or larger
            than Pillow's decompression-bomb limit (``2 * PIL.Image.MAX_IMAGE_PIXELS``).
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            w0, h0 = im.size
            if im.format == "JPEG":
                side0 = min(w0, h0) if crop is None else min(crop, w0, h0)
                # keep at least twice the needed pixels, like Image.thumbnail's reducing_gap,
                # so the final Lanczos step still does the antialiasing
                need = math.ceil(2 * resolution * min(w0, h0) / side0)
                im.draft(None, (need, need))
            scale = im.size[0] / w0  # < 1 when draft() picked a reduced decode
            im.load()
            im = ImageOps.exif_transpose(im)
            rgb = _to_rgb(im, background)
    except Image.DecompressionBombError as e:
        raise BadImageError(path, f"too large ({e})") from e
    except (OSError, ValueError, SyntaxError, EOFError, TypeError) as e:
        empty = path.is_file() and path.stat().st_size == 0
        reason = "empty file (0 bytes)" if empty else f"{type(e).__name__}: {e}"
        raise BadImageError(path, reason) from e
    w, h = rgb.size
    if crop is None:
        # resize with a box = resize the whole picture, then cut the centre square
        side = min(w, h)
        box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
        out = rgb.resize((resolution, resolution), Image.Resampling.LANCZOS, box=box)
    else:
        # cut first (pixels outside the crop never reach the output), then resize
        side = min(round(crop * scale), w, h)
        left, top = round((w - side) / 2), round((h - side) / 2)
        out = rgb.crop((left, top, left + side, top + side))
        out = out.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(out, dtype=np.uint8)


# --------------------------------------------------------------------------------------------
# Building, saving and reloading a uint8 cache
# --------------------------------------------------------------------------------------------


def build_uint8_images(
    paths: Sequence[Path],
    decode: Callable[[Path], np.ndarray],
    resolution: int,
    *,
    skip_bad: bool,
    progress: bool,
    num_workers: int | None,
    description: str = "decoding images",
) -> tuple[torch.Tensor, list[int]]:
    """Decode ``paths`` with ``decode`` into one ``uint8`` tensor ``(N_ok, 3, R, R)``.

    Args:
        paths: files to decode, in order.
        decode: ``path -> (R, R, 3) uint8`` array; raises :class:`BadImageError` on a bad file.
        resolution: ``R``.
        skip_bad: ``True`` drops bad files (their indices are returned); ``False`` re-raises
            the first :class:`BadImageError`.
        progress: show a ``rich`` progress bar.
        num_workers: decoding threads; ``None`` = ``min(8, cpu_count)``, ``0`` = decode in the
            calling thread.
        description: label of the progress bar.

    Returns:
        the images of the good files in order, and the indices (into ``paths``) of bad files.
    """
    n = len(paths)
    out = np.empty((n, resolution, resolution, 3), dtype=np.uint8)
    ok = np.ones(n, dtype=bool)
    bad: list[int] = []

    def work(i: int):
        try:
            return decode(paths[i])
        except BadImageError as e:
            return e

    if num_workers is None:
        num_workers = min(8, os.cpu_count() or 1)
    pool = ThreadPoolExecutor(max_workers=num_workers) if num_workers > 0 else None
    results = pool.map(work, range(n)) if pool is not None else map(work, range(n))

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, disable=not progress) as bar:
            task = bar.add_task(description, total=n)
            for i, res in enumerate(results):
                if isinstance(res, BadImageError):
                    if not skip_bad:
                        raise res
                    ok[i] = False
                    bad.append(i)
                else:
                    out[i] = res
                bar.advance(task)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    images = torch.from_numpy(out[ok]).permute(0, 3, 1, 2).contiguous()
    return images, bad


def cache_key(payload: dict[str, Any]) -> str:
    """Hex SHA-256 of a JSON-serialisable description of everything a cache depends on."""
    text = json.dumps({"format": CACHE_FORMAT, **payload}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _atomic_save(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it over ``path``."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def cached(cache_file: Path | None, key: str, build: Callable[[], dict[str, Any]]):
    """Load the cache ``cache_file`` if it exists and matches ``key``, else ``build`` and save it.

    Args:
        cache_file: where the cache lives; ``None`` = keep it in memory only.
        key: :func:`cache_key` of what the content depends on (stored inside and checked).
        build: makes the content, a dict of tensors, strings, numbers and lists.

    Returns:
        ``(content, from_cache)``. An unreadable or mismatching cache file is rebuilt with a
        warning; a cache folder that cannot be written to only warns.
    """
    if cache_file is not None and cache_file.is_file():
        try:
            data = torch.load(cache_file, map_location="cpu", weights_only=True, mmap=True)
            if data.get("key") == key:
                return data, True
            warnings.warn(f"cache {cache_file} does not match its key; rebuilding it", stacklevel=3)
        except Exception as e:  # a truncated or foreign file: rebuild rather than fail
            warnings.warn(f"cannot read cache {cache_file} ({e}); rebuilding it", stacklevel=3)
    data = {"key": key, **build()}
    if cache_file is not None:
        try:
            _atomic_save(data, cache_file)
        except OSError as e:
            warnings.warn(f"cannot write cache {cache_file} ({e}); keeping it in memory only",
                          stacklevel=3)
    return data, False


def subset_indices(n: int, max_images: int | None, seed: int) -> list[int]:
    """Deterministic subset of ``range(n)``: ``max_images`` indices drawn with ``seed``, sorted.

    ``None`` or ``max_images >= n`` keeps everything.
    """
    if max_images is None or max_images >= n:
        return list(range(n))
    g = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(n, generator=g)[:max_images].tolist())


def _check_common(resolution: int, max_images: int | None) -> None:
    if not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution must be a positive int, got {resolution!r}")
    if max_images is not None and (not isinstance(max_images, int) or max_images < 1):
        raise ValueError(f"max_images must be a positive int or None, got {max_images!r}")


def _warn_skipped(name: str, where: Path, skipped: list[Path]) -> None:
    # stacklevel=1: the warning is reported at this line, not at the caller's caller (under
    # Hydra that was Hydra's instantiate module), and Python's default filter shows a given
    # message once per process, however many times the same folder is built
    if skipped:
        first = ", ".join(f"'{p.relative_to(where)}'" for p in skipped[:3])
        first += ", ..." if len(skipped) > 3 else ""
        warnings.warn(
            f"{name}: skipped {len(skipped)} unreadable image file(s) under '{where}' "
            f"({first}); the list is in .skipped_files",
            stacklevel=1,
        )


class _UInt8FaceDataset(Dataset):
    """Serves a ``uint8`` image tensor and identity labels under the sample contract."""

    images: torch.Tensor  # (N, 3, H, W) uint8
    identities: torch.Tensor  # (N,) int64, -1 = unknown

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_identities(self) -> int:
        """Number of distinct known identities (labels other than -1)."""
        return int(torch.unique(self.identities[self.identities >= 0]).numel())

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image = self.images[index].to(torch.float32).div_(127.5).sub_(1.0)  # (3, H, W) in [-1, 1]
        return {"image": image, "identity": self.identities[index].clone()}


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def list_images(root: Path, report: list[str] | None = None) -> list[Path]:
    """Image files under ``root`` (recursive, symlinks followed), each real file once, sorted.

    Extensions are :data:`IMAGE_EXTENSIONS`, case-insensitive; hidden files and folders (names
    starting with ``.``, e.g. macOS ``._x.jpg`` forks) are ignored.

    Symbolic links are followed, but every real folder is entered once and every real file
    (identified by ``(st_dev, st_ino)``, so also a hard link) is listed once, under the
    first of its paths in sorted order. A link back to a folder being walked (a loop, e.g.
    ``faces/self -> .``) is not entered; neither is a second path to a folder already walked.
    Broken links are ignored. The walk is depth-first over sorted names, so the result does
    not depend on the order the file system lists entries in.

    Args:
        root: folder to search.
        report: when given, a human-readable line per loop, repeated folder and repeated
            file left out is appended to it (:class:`FolderFaces` warns with them).

    Returns:
        paths under ``root`` (through the links that reached them), sorted by relative path.
    """
    root = Path(root)
    found: list[Path] = []
    seen_files: dict[tuple[int, int], Path] = {}
    seen_dirs: dict[tuple[int, int], Path] = {}
    notes = report if report is not None else []

    def walk(folder: Path, ancestors: tuple[tuple[int, int], ...]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            notes.append(f"cannot list '{folder}' ({e.strerror or e})")
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                st = entry.stat(follow_symlinks=True)
            except OSError:  # a broken link, or a file removed meanwhile
                continue
            ident = (st.st_dev, st.st_ino)
            path = folder / entry.name
            if entry.is_dir(follow_symlinks=True):
                if ident in ancestors:
                    target = seen_dirs.get(ident, root)
                    notes.append(f"symbolic link loop: '{path}' leads back to '{target}'; not followed")
                elif ident in seen_dirs:
                    notes.append(f"'{path}' is the folder '{seen_dirs[ident]}' again; its files are "
                                 "counted once")
                else:
                    seen_dirs[ident] = path
                    walk(path, (*ancestors, ident))
            elif _is_image_name(entry.name):
                if ident in seen_files:
                    notes.append(f"'{path}' is the file '{seen_files[ident]}' again; counted once")
                else:
                    seen_files[ident] = path
                    found.append(path)

    st = root.stat()
    seen_dirs[(st.st_dev, st.st_ino)] = root
    walk(root, ((st.st_dev, st.st_ino),))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _warn_links(root: Path, notes: list[str]) -> None:
    if notes:
        more = f" (and {len(notes) - 3} more)" if len(notes) > 3 else ""
        warnings.warn(f"FolderFaces: under '{root}': " + "; ".join(notes[:3]) + more, stacklevel=1)


class FolderFaces(_UInt8FaceDataset):
    """Any folder of face images, decoded once into a cached ``uint8`` tensor.

    Every image is converted to RGB (greyscale replicated, 16-bit scaled, palette expanded,
    alpha composited over ``background``), turned upright by its EXIF orientation, then its
    shorter side is resized to ``resolution`` and the centre square kept (antialiased).

    Samples: ``{"image": float32 (3, R, R) in [-1, 1], "identity": int64 scalar}``.

    Args:
        root: folder searched recursively for :data:`IMAGE_EXTENSIONS` (case-insensitive);
            symbolic links are followed, each real file counted once, and links that loop
            back are reported in a warning and not entered (see :func:`list_images`).
        resolution: side ``R`` of the square output images, in pixels.
        labels: ``"subfolders"`` = identity is the index of the file's first-level sub-folder
            in the sorted list of sub-folder names (:attr:`class_names`; files directly in
            ``root`` get -1); ``None`` = every identity is -1 (unknown).
        max_images: keep a deterministic random subset of this many files (drawn with
            ``seed`` before decoding, kept in path order); ``None`` or a number larger than
            the folder keeps every file.
        seed: seed of the ``max_images`` draw.
        skip_bad: ``True`` skips files that cannot be decoded, counts them
            (:attr:`num_skipped`, :attr:`skipped_files`) and warns once; ``False`` raises
            :class:`BadImageError` naming the first such file.
        background: RGB colour (0-255) that transparent pixels are composited over; white by
            default, as image viewers show them.
        cache: ``True`` saves the preprocessed tensor under ``cache_dir`` and reloads it next
            time; ``False`` keeps it in memory only.
        cache_dir: folder of cache files; ``None`` = :func:`default_cache_dir` ``("folder")``,
            i.e. ``$GENFACE_CACHE/folder`` or ``~/.cache/genface/folder``.
        progress: show a progress bar while decoding (never shown when loading the cache).
        num_workers: decoding threads; ``None`` = ``min(8, cpu_count)``, ``0`` = none.

    Attributes:
        images: ``uint8`` tensor ``(N, 3, R, R)``.
        identities: ``int64`` tensor ``(N,)``.
        files: the ``N`` decoded files, in order.
        class_names: sorted sub-folder names (``[]`` unless ``labels="subfolders"``).
        skipped_files / num_skipped: files left out by ``skip_bad``.
        cache_file: the cache's path (``None`` when ``cache=False``); from_cache: whether
            this construction loaded it instead of decoding.

    Raises:
        FileNotFoundError: ``root`` does not exist. NotADirectoryError: it is a file.
        DataFolderError (a ``ValueError``): no image file under ``root``, or all of them
            unreadable. ValueError: a bad argument.
        BadImageError: an unreadable file, when ``skip_bad=False``.
    """

    def __init__(
        self,
        root: str | Path,
        resolution: int = 64,
        labels: str | None = None,
        max_images: int | None = None,
        seed: int = 0,
        skip_bad: bool = False,
        background: tuple[int, int, int] = (255, 255, 255),
        cache: bool = True,
        cache_dir: str | Path | None = None,
        progress: bool = True,
        num_workers: int | None = None,
    ):
        _check_common(resolution, max_images)
        if labels not in LABEL_MODES:
            raise ValueError(f"labels must be one of {list(LABEL_MODES)}, got {labels!r}")
        background = tuple(int(c) for c in background)
        if len(background) != 3 or not all(0 <= c <= 255 for c in background):
            raise ValueError(f"background must be three ints in 0..255, got {background!r}")
        root = Path(root).expanduser().absolute()
        if not root.exists():
            raise FileNotFoundError(f"FolderFaces: no such folder: '{root}'")
        if not root.is_dir():
            raise NotADirectoryError(f"FolderFaces: '{root}' is a file, not a folder of images")
        self.root = root
        self.resolution = resolution

        link_notes: list[str] = []
        all_files = list_images(root, report=link_notes)
        _warn_links(root, link_notes)
        if not all_files:
            raise DataFolderError(
                f"FolderFaces: no images found under '{root}' (searched recursively for "
                f"{', '.join(IMAGE_EXTENSIONS)}, case-insensitive; hidden files ignored)"
            )
        rel = [p.relative_to(root) for p in all_files]
        if labels == "subfolders":
            self.class_names = sorted({r.parts[0] for r in rel if len(r.parts) > 1})
        else:
            self.class_names = []
        chosen = subset_indices(len(all_files), max_images, seed)
        files = [all_files[i] for i in chosen]

        stats = file_stats(files, [p.relative_to(root).as_posix() for p in files])
        key, cache_file = keyed_cache_file("folder", root.name or "root", resolution, {
            "dataset": "FolderFaces", "root": str(root), "files": stats,
            "resolution": resolution, "labels": labels, "max_images": max_images, "seed": seed,
            "skip_bad": skip_bad, "background": background,
        }, cache, cache_dir)

        def build() -> dict[str, Any]:
            images, bad = build_uint8_images(
                files, lambda p: load_face(p, resolution, background=background), resolution,
                skip_bad=skip_bad, progress=progress, num_workers=num_workers,
                description=f"caching {root.name} at {resolution}px",
            )
            bad_set = set(bad)
            return {
                "images": images,
                "files": [stats[i][0] for i in range(len(files)) if i not in bad_set],
                "skipped": [stats[i][0] for i in bad],
            }

        data, self.from_cache = cached(cache_file, key, build)
        self.cache_file = cache_file
        self.images = data["images"]
        self.files = [root / f for f in data["files"]]
        self.skipped_files = [root / f for f in data["skipped"]]
        if len(self.files) == 0:
            raise DataFolderError(
                f"FolderFaces: all {len(self.skipped_files)} image files under '{root}' are "
                f"unreadable (first: '{self.skipped_files[0]}')"
            )
        index = {name: i for i, name in enumerate(self.class_names)}
        ids = [index[Path(f).parts[0]] if labels == "subfolders" and len(Path(f).parts) > 1
               else -1 for f in data["files"]]
        self.identities = torch.tensor(ids, dtype=torch.int64)
        _warn_skipped("FolderFaces", root, self.skipped_files)

    @property
    def num_skipped(self) -> int:
        """How many files ``skip_bad`` left out."""
        return len(self.skipped_files)

    def __repr__(self) -> str:
        return (f"FolderFaces(root='{self.root}', n={len(self)}, resolution={self.resolution}, "
                f"classes={len(self.class_names)}, skipped={self.num_skipped})")


class OlivettiFaces(_UInt8FaceDataset):
    """The Olivetti faces (AT&T / ORL, 40 people x 10 images, 64x64 greyscale) from NumPy files.

    Reads ``olivetti_faces_uint8.npy`` ``(400, 64, 64)`` ``uint8`` and ``olivetti_targets.npy``
    ``(400,)`` identities 0..39 (the layout of ``$GENFACE_DATA/olivetti``), replicates the
    grey channel to RGB and resizes to ``resolution`` (bicubic, antialiased). Small enough to
    preprocess in memory at every construction, so it has no disk cache.
    Credit: Olivetti Research Laboratory (Samaria & Harter, 1994).

    Samples: ``{"image": float32 (3, R, R) in [-1, 1], "identity": int64 0..39}``.

    Args:
        root: a folder holding ``olivetti/olivetti_faces_uint8.npy`` (e.g. ``$GENFACE_DATA``)
            or the ``olivetti`` folder itself.
        resolution: side ``R`` of the output images; 64 keeps the original pixels.

    Raises:
        FileNotFoundError: the two ``.npy`` files are not found; the message names where they
            were looked for.
    """

    FACES = "olivetti_faces_uint8.npy"
    TARGETS = "olivetti_targets.npy"

    def __init__(self, root: str | Path, resolution: int = 64):
        _check_common(resolution, None)
        root = Path(root).expanduser().absolute()
        folder = root if (root / self.FACES).is_file() else root / "olivetti"
        faces, targets = folder / self.FACES, folder / self.TARGETS
        for f in (faces, targets):
            if not f.is_file():
                raise FileNotFoundError(
                    f"OlivettiFaces: '{f}' not found; expected '{self.FACES}' and "
                    f"'{self.TARGETS}' in '{root}' or '{root / 'olivetti'}'"
                )
        arr = np.load(faces)
        ids = np.load(targets)
        if arr.ndim != 3 or arr.dtype != np.uint8 or ids.shape != (arr.shape[0],):
            raise ValueError(
                f"OlivettiFaces: expected faces (N, H, W) uint8 and targets (N,), got "
                f"{arr.shape} {arr.dtype} and {ids.shape}"
            )
        x = torch.from_numpy(arr).unsqueeze(1)  # (N, 1, 64, 64)
        if x.shape[-2:] != (resolution, resolution):
            x = torch.nn.functional.interpolate(
                x.float(), size=(resolution, resolution), mode="bicubic", antialias=True,
                align_corners=False,
            ).round_().clamp_(0, 255).to(torch.uint8)
        self.root = folder
        self.resolution = resolution
        self.images = x.expand(-1, 3, -1, -1).contiguous()  # (N, 3, R, R)
        self.identities = torch.from_numpy(ids.astype(np.int64))
        self.class_names = [str(i) for i in range(int(ids.max()) + 1)] if ids.size else []
