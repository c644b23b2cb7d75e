"""Generative face models: plain ``nn.Module``s, one file per architecture, no Lightning.

:func:`from_pretrained` loads any folder written by ``save_pretrained``: it reads the saved
``class`` key of ``config.json`` and returns that class's model (diffusers'
``DiffusionPipeline.from_pretrained`` pattern).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

__all__ = ["from_pretrained", "MODEL_CLASSES"]

#: Short names accepted in ``config.json``'s ``class`` key besides full dotted paths.
MODEL_CLASSES: dict[str, str] = {
    "DCGAN": "genface.models.dcgan.DCGAN",
    "VAE": "genface.models.vae.VAE",
    "FaceSwap": "genface.models.faceswap.FaceSwap",
    "ProGAN": "genface.models.progan.ProGAN",
    "StyleGAN": "genface.models.stylegan.StyleGAN",
    "StyleGAN2": "genface.models.stylegan2.StyleGAN2",
}


def model_class(name: str) -> type:
    """The model class named by a ``config.json`` ``class`` key (a short name or a dotted path).

    Only classes inside the ``genface`` package that derive from
    :class:`~genface.models.base.PretrainedMixin` are accepted: a config file never makes
    genface import arbitrary code.
    """
    from genface.models.base import PretrainedMixin

    dotted = MODEL_CLASSES.get(name, name)
    module, _, qualname = dotted.rpartition(".")
    if not (module == "genface" or module.startswith("genface.")):
        raise ValueError(f"config.json names class {name!r}, which is not a genface model class")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"config.json names class {name!r}, which this genface cannot import: {e}") from e
    if not (isinstance(obj, type) and issubclass(obj, PretrainedMixin)):
        raise ValueError(f"{dotted} is not a genface model class (no save_pretrained/from_pretrained)")
    return obj


def from_pretrained(directory: str | Path, map_location: Any = "cpu"):
    """Load the model saved in ``directory``, whatever its class.

    Args:
        directory: a folder written by ``save_pretrained`` (``config.json`` + ``model.safetensors``).
        map_location: device the weights are loaded to.

    Returns:
        The model (e.g. a :class:`~genface.models.stylegan2.StyleGAN2`), in eval mode.
    """
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {directory} a save_pretrained folder?")
    meta = json.loads(path.read_text())
    if "class" not in meta:
        raise ValueError(f"{path} has no 'class' key; load it with the model class's own from_pretrained")
    return model_class(meta["class"]).from_pretrained(directory, map_location=map_location).eval()
