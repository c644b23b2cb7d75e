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
import difflib
import json
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from genface import provenance
from genface.errors import PretrainedError
from genface.models.card import write_model_card
from genface.utils import (
    RETIRED_CONFIG_KEYS,
    atomic_path,
    atomic_write_text,
    build_config,  # noqa: F401  (re-exported: its old home)
    seeded_randn,  # noqa: F401  (re-exported: models import it from here)
)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def non_finite_tensors(named: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors of ``named`` that hold a NaN or an Inf (one sync)."""
    items = [(k, t) for k, t in named.items() if torch.is_tensor(t) and t.is_floating_point() and t.numel()]
    if not items:
        return []
    # fast path: a sum is NaN/Inf when any element is (one pass, ~10x cheaper than isfinite);
    # only when a sum is not finite (or overflowed) are the elements checked one by one
    sums = torch.stack([t.detach().sum().float() for _, t in items])
    if bool(torch.isfinite(sums).all()):
        return []
    ok = torch.stack([torch.isfinite(t.detach()).all() for _, t in items])
    if bool(ok.all()):
        return []
    return [k for (k, _), good in zip(items, ok.tolist()) if not good]


def save_safetensors(state: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str]) -> None:
    """Write ``state`` as a safetensors file whose bytes depend only on its content.

    safetensors itself writes the ``__metadata__`` entries in a random order (a Rust hash
    map), so identical weights gave different files. Here the header is re-encoded with the
    metadata keys sorted (tensors stay in the library's order, sorted by dtype and name) and
    padded with spaces to a multiple of 8 bytes, as the format asks; the tensor bytes are the
    library's. The file is written beside ``path`` and renamed into place (:func:`genface.utils.atomic_path`).
    """
    blob = safetensors_bytes(state, metadata=metadata)
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    ordered = {"__metadata__": dict(sorted(header.pop("__metadata__", {}).items())), **header}
    text = json.dumps(ordered, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        f.write(memoryview(blob)[8 + n:])


def _suggest(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class PretrainedMixin:
    """Adds ``save_pretrained`` / ``from_pretrained`` to an ``nn.Module`` with a dataclass config.

    Subclasses set ``config_class`` and store their config as ``self.config``.
    """

    config_class: ClassVar[type]
    config: Any

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to ``directory`` (created if needed).

        Raises:
            PretrainedError: a parameter or buffer holds NaN or Inf (a diverged network);
                nothing is written.
        """
        directory = Path(directory)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        bad = non_finite_tensors(state)
        if bad:
            more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
            raise PretrainedError(
                f"refusing to save {type(self).__name__} to {directory}: {len(bad)} tensor(s) hold NaN "
                f"or Inf ({', '.join(bad[:5])}{more}); the network diverged. Export an earlier "
                "checkpoint, or retrain with a lower learning rate."
            )
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "config": dataclasses.asdict(self.config),
            "synthetic_generator": True,
        }
        atomic_write_text(directory / CONFIG_NAME, json.dumps(meta, indent=2))
        save_safetensors(state, directory / WEIGHTS_NAME,
                         metadata={"format": "pt", **provenance.model_metadata(self, state)})
        write_model_card(self, directory)  # README.md beside the weights (genface/models/card.py)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu"):
        """Rebuild a model saved by :meth:`save_pretrained`.

        Args:
            directory: folder holding ``config.json`` and ``model.safetensors``.
            map_location: device the weights are loaded to.

        Raises:
            FileNotFoundError: a file is missing. PretrainedError: ``config.json`` is not valid
                JSON, is of another class or holds unknown keys (the valid ones are listed), or
                ``model.safetensors`` is damaged or does not fit the config; each message names
                the file and the fix.
        """
        directory = Path(directory)
        cfg_path, w_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
        for p in (cfg_path, w_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p} not found: is {directory} a save_pretrained folder?")
        fix = f"re-export the model with save_pretrained (or restore {directory} from a copy)"
        try:
            meta = json.loads(cfg_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PretrainedError(f"{cfg_path} is not valid JSON ({e}): the file is damaged; {fix}") from e
        if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
            raise PretrainedError(f"{cfg_path} has no \"config\" object: it was not written by "
                                  f"save_pretrained; {fix}")
        expected = f"{cls.__module__}.{cls.__qualname__}"
        if meta.get("class") not in (None, expected):
            raise PretrainedError(f"{cfg_path} holds a {meta['class']}, not a {expected}: load it "
                                  f"with {meta['class'].rpartition('.')[2]}.from_pretrained")
        valid = [f.name for f in dataclasses.fields(cls.config_class)]
        meta["config"] = {k: v for k, v in meta["config"].items() if k not in RETIRED_CONFIG_KEYS or k in valid}
        unknown = [k for k in meta["config"] if k not in valid]
        if unknown:
            hints = "".join(_suggest(k, valid) for k in unknown[:1])
            raise PretrainedError(
                f"{cfg_path}: unknown key(s) {unknown} in \"config\" for {cls.config_class.__name__}{hints}; "
                f"valid keys: {valid}. Remove or rename them in {cfg_path.name}, or load it with the "
                "genface version that wrote it."
            )
        try:
            model = cls(cls.config_class(**meta["config"]))
        except (TypeError, ValueError) as e:
            raise PretrainedError(f"{cfg_path}: the config does not build a {cls.__name__} ({e}); "
                                  f"fix that value in {cfg_path.name}") from e
        try:
            state = load_file(str(w_path), device=str(map_location))
        except (SafetensorError, OSError, ValueError) as e:
            raise PretrainedError(f"{w_path} is damaged or not a safetensors file ({type(e).__name__}: {e}); "
                                  f"{fix}") from e
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            first = str(e).splitlines()[:2]
            raise PretrainedError(f"{w_path} does not fit the model described by {cfg_path.name} "
                                  f"({' '.join(first)[:300]}); the two files come from different models: {fix}") from e
        return model.to(map_location)


class GANPair(PretrainedMixin, nn.Module):
    """A generator + discriminator pair built from one dataclass config (DCGAN, ProGAN, StyleGAN,
    StyleGAN2).

    Subclasses set ``config_class``, ``generator_class`` and ``discriminator_class``; both
    networks are built from the same config. Calling the pair runs the generator. The pairs
    whose generators have the ws notebook API (``mapping``, ``synthesis``, ``style_mix``, ...)
    add :class:`~genface.models.api.GANWrapperAPI` in front, which delegates it to the generator;
    DCGAN, without ws, does not (so ``hasattr(net, "mapping")`` is false for it).

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

    @property
    def z_dim(self) -> int:
        return self.generator.z_dim

    def forward(self, z: torch.Tensor, **kwargs) -> torch.Tensor:
        """Run the generator: ``self.generator(z, **kwargs)``."""
        return self.generator(z, **kwargs)
