"""Small helpers shared across genface.

:func:`require` is the one place optional dependencies are imported: a missing one fails with
a one-line message that names the extra to install (``pip install 'genface[faces]'``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

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
