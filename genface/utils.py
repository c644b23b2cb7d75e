"""Small helpers shared across genface.

:func:`require` is the one place optional dependencies are imported: a missing one fails with
a one-line message that names the extra to install (``pip install 'genface[faces]'``).
:func:`seeded_randn` draws the seeded latents of every model, :func:`atomic_write_bytes` /
:func:`atomic_write_text` write every file that must not be seen half-written, and
:func:`cache_dir` resolves ``GENFACE_CACHE`` for every cache and :func:`make_grid` tiles images
for every sample grid, :func:`pyplot` gives matplotlib for every figure. torch is imported inside the
functions that need it, so that importing this module stays cheap (CLI ``--help``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

#: The extra of ``pyproject.toml`` that installs each optional top-level module.
EXTRAS: dict[str, str] = {
    "cv2": "faces",
    "dlib": "faces",
    "face_recognition_models": "faces",
    "pkg_resources": "faces",
    "av": "video",
    "torch_fidelity": "metrics",
    "tensorboard": "tensorboard",
    "wandb": "wandb",
    "optuna": "sweeps",
    "submitit": "cluster",
    "h5py": "interop",
    "torchvision": "vision",
    "matplotlib": "plots",
}


class MissingExtraError(ModuleNotFoundError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def require(module: str, extra: str | None = None, *, feature: str | None = None) -> ModuleType:
    """Import an optional dependency, or fail with a one-line message naming its extra.

    Args:
        module: the module to import, e.g. ``"cv2"`` or ``"torch_fidelity.feature_extractor_inceptionv3"``.
        extra: the ``genface[...]`` extra that installs it; default: looked up in :data:`EXTRAS`
            by the top-level package name (``"all"`` when unknown).
        feature: what needs it, for the message (e.g. ``"video reading"``); default: the module.

    Returns:
        The imported module.

    Raises:
        MissingExtraError: (a ``ModuleNotFoundError``) when the module, or a package it needs,
            is missing.
    """
    top = module.split(".")[0]
    extra = extra or EXTRAS.get(top, "all")
    try:
        return importlib.import_module(module)
    except ImportError as e:
        missing = getattr(e, "name", None) or top
        raise MissingExtraError(
            f"{feature or module} needs {missing!r}, which is not installed: "
            f"pip install 'genface[{extra}]'", name=missing) from e


def missing_extra(module: str, extra: str | None = None, *, feature: str | None = None) -> str | None:
    """``None`` when :func:`require` would import ``module``, else its one-line message (for
    features that are skipped, not failed, without their extra: the report's figures)."""
    try:
        require(module, extra, feature=feature)
    except MissingExtraError as e:
        return str(e)
    return None


def pyplot(feature: str | None = None) -> ModuleType:
    """``matplotlib.pyplot`` on the file-only Agg backend, from the ``plots`` extra (every
    figure genface draws goes through here).

    Raises:
        MissingExtraError: matplotlib is not installed (the message names ``genface[plots]``).
    """
    matplotlib = require("matplotlib", feature=feature or "drawing figures")
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


#: config fields that older genface versions wrote and that moved elsewhere: dropped when a saved
#: ``config.json`` is loaded, named with their new home when a config is built with them.
RETIRED_CONFIG_KEYS: dict[str, str] = {
    "style_mixing_prob": "a training knob now: model.objective.style_mixing_prob (genface.training.objective)",
}


def build_config(config_class: type, config: Any = None, **overrides: Any):
    """Make a ``config_class`` instance from a dataclass, a mapping and/or keyword overrides.

    Unknown keys raise :class:`TypeError` naming the valid fields.
    """
    base: dict[str, Any] = {}
    if config is not None:
        base = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    base.update(overrides)
    valid = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(base) - valid)
    if unknown:
        moved = "".join(f"; {k} is {RETIRED_CONFIG_KEYS[k]}" for k in unknown if k in RETIRED_CONFIG_KEYS)
        raise TypeError(
            f"{config_class.__name__} got unknown field(s) {unknown}; valid fields: {sorted(valid)}{moved}"
        )
    return config_class(**base)


def seeded_randn(*shape: int, seed: int | None = None, device: Any = "cpu") -> Any:
    """Standard normal samples; a given ``seed`` makes them the same on every call and machine.

    The numbers are drawn on the CPU (so a seed gives the same latents on CPU and CUDA) and
    then moved to ``device``. ``seed=None`` draws from the global generator.
    """
    import torch

    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    return torch.randn(*shape, generator=gen).to(device)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` when the block ends
    without an error (``os.replace`` is atomic on POSIX), removed otherwise. Readers see the
    old file or the new one, never half of one; the name is unique per process and call.

    Example::

        with atomic_path(out / "cache.pt") as tmp:
            torch.save(obj, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` for text (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def cache_dir(*parts: str, create: bool = True) -> Path:
    """The genface cache folder (``$GENFACE_CACHE``, default ``~/.cache/genface``), or a sub-folder.

    Args:
        *parts: sub-folders below the cache root.
        create: make the folder if it does not exist.
    """
    root = os.environ.get("GENFACE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "genface")
    # GENFACE_CACHE names genface's cache root: data (synthetic, folder, celeba), metrics, provenance
    path = Path(root).expanduser().joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def make_grid(images: Any, nrow: int = 8, padding: int = 2, pad_value: float = 0.0) -> Any:
    """Tile a batch of images into one image, as ``torchvision.utils.make_grid`` does (same
    layout, same output for these arguments; ``normalize`` and ``scale_each`` are not offered).

    torchvision is not a core dependency of genface: PyPI's torchvision pins one torch release
    (so installing it replaces a user's torch) and its Linux wheels do not import beside a CPU
    build of torch, which also breaks ``import lightning`` (torchmetrics imports torchvision
    when it is installed). genface's sample grids therefore use this function.

    Args:
        images: (N, C, H, W) tensor or a list of (C, H, W) tensors; C = 1 is repeated to 3.
        nrow: images per row of the grid.
        padding: pixels between images and around the grid.
        pad_value: value of the padding pixels.

    Returns:
        (C, rows * (H + padding) + padding, min(nrow, N) * (W + padding) + padding), or the
        one (C, H, W) image itself when N = 1 (torchvision's behaviour).
    """
    import torch

    x = torch.stack(list(images)) if isinstance(images, (list, tuple)) else images
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.size(1) == 1:
        x = torch.cat((x, x, x), 1)
    if x.size(0) == 1:
        return x.squeeze(0)
    n, c, h, w = x.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    step_h, step_w = h + padding, w + padding
    grid = x.new_full((c, step_h * rows + padding, step_w * cols + padding), pad_value)
    for k in range(n):
        y, xpos = divmod(k, cols)
        grid[:, y * step_h + padding: y * step_h + padding + h, xpos * step_w + padding: xpos * step_w + padding + w] = x[k]
    return grid
