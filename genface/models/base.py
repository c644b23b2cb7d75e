"""Shared model plumbing: typed configs and ``save_pretrained`` / ``from_pretrained``.

Every model in :mod:`genface.models` is a plain :class:`torch.nn.Module` that

* declares a dataclass config (``config_class``) whose fields are its constructor's
  keyword arguments, each documented where it is declared;
* keeps that config as ``self.config``;
* saves as ``config.json`` + ``model.safetensors`` (never pickled code) and reloads with
  :meth:`PretrainedMixin.from_pretrained`.

This follows the diffusers ``save_pretrained`` pattern and nanoGPT's ``GPTConfig``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from genface.models.card import write_model_card
from genface.nn.latent import GANWrapperAPI

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


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
        raise TypeError(
            f"{config_class.__name__} got unknown field(s) {unknown}; valid fields: {sorted(valid)}"
        )
    return config_class(**base)


class PretrainedMixin:
    """Adds ``save_pretrained`` / ``from_pretrained`` to an ``nn.Module`` with a dataclass config.

    Subclasses set ``config_class`` and store their config as ``self.config``.
    """

    config_class: ClassVar[type]
    config: Any

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to ``directory`` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "config": dataclasses.asdict(self.config),
            "synthetic_generator": True,
        }
        tmp = directory / (CONFIG_NAME + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2))
        tmp.replace(directory / CONFIG_NAME)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        tmpw = directory / (WEIGHTS_NAME + ".tmp")
        save_file(state, str(tmpw), metadata={"format": "pt", "synthetic": "true"})
        tmpw.replace(directory / WEIGHTS_NAME)
        write_model_card(self, directory)  # README.md beside the weights (genface/models/card.py)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu"):
        """Rebuild a model saved by :meth:`save_pretrained`.

        Args:
            directory: folder holding ``config.json`` and ``model.safetensors``.
            map_location: device the weights are loaded to.
        """
        directory = Path(directory)
        cfg_path, w_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
        for p in (cfg_path, w_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p} not found: is {directory} a save_pretrained folder?")
        meta = json.loads(cfg_path.read_text())
        expected = f"{cls.__module__}.{cls.__qualname__}"
        if meta.get("class") not in (None, expected):
            raise ValueError(f"{directory} holds a {meta['class']}, not a {expected}")
        model = cls(cls.config_class(**meta["config"]))
        state = load_file(str(w_path), device=str(map_location))
        model.load_state_dict(state)
        return model.to(map_location)


def seeded_randn(*shape: int, seed: int | None = None, device: str | torch.device = "cpu") -> torch.Tensor:
    """Standard normal samples; a given ``seed`` makes them the same on every call and machine.

    The numbers are drawn on the CPU (so a seed gives the same latents on CPU and CUDA) and
    then moved to ``device``. ``seed=None`` draws from the global generator.
    """
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    return torch.randn(*shape, generator=gen).to(device)


def check_resolution(resolution: int, valid: tuple[int, ...], model: str) -> int:
    """Raise a clear error unless ``resolution`` is one of ``valid``."""
    if resolution not in valid:
        raise ValueError(f"{model} supports resolutions {list(valid)}, got {resolution}")
    return resolution


class GANPair(PretrainedMixin, GANWrapperAPI, nn.Module):
    """A generator + discriminator pair built from one dataclass config (ProGAN, StyleGAN, StyleGAN2).

    Subclasses set ``config_class``, ``generator_class`` and ``discriminator_class``; both
    networks are built from the same config. Calling the pair runs the generator, and the
    notebook API (``generate``, ``mapping``, ``synthesis``, ...) delegates to it.

    Args:
        config: a ``config_class`` instance or mapping; ``None`` = the defaults.
        **overrides: fields of ``config_class`` to change.
    """

    generator_class: ClassVar[type[nn.Module]]
    discriminator_class: ClassVar[type[nn.Module]]

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__()
        self.config = cfg = build_config(self.config_class, config, **overrides)
        self.generator = self.generator_class(cfg)
        self.discriminator = self.discriminator_class(cfg)
