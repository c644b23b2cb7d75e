"""Typed configs: the top-level run schema, ``_target_`` checks and OmegaConf resolvers.

Hydra composes the YAML in ``configs/``; before anything is instantiated,
:func:`validate_config` checks every node that has a ``_target_``:

* a model whose class declares a dataclass ``config_class`` is merged into that dataclass
  (``OmegaConf.structured``), so a wrong type or an unknown key fails with the field name;
* any other target is checked against its signature: unknown keys are listed with the
  valid ones, and values of parameters annotated ``int``/``float``/``bool``/``str`` must
  have that type.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from genface.errors import ConfigError


@dataclass
class DivergenceConfig:
    """``divergence:`` section of a run: when a run counts as diverged (see
    :meth:`genface.training.base.GenerativeModule.configure_divergence`)."""

    # a loss whose magnitude exceeds this counts as diverged, like NaN/Inf; null = only NaN/Inf
    loss_limit: float | None = 1e8
    # with model.nan_policy=skip, fail the run when more than this share of its steps was skipped
    max_skipped_fraction: float = 0.5
    # with model.nan_policy=stop: check losses and weights every this many steps (one host-device
    # sync per check instead of several per step; a NaN raises at most check_every - 1 steps late)
    check_every: int = 1


@dataclass
class RunSchema:
    """Top-level keys of ``configs/train.yaml`` (groups are checked by :func:`validate_config`)."""

    task_name: str = "train"  # names the output folder logs/<task_name>/
    tags: list[str] = field(default_factory=lambda: ["dev"])  # free-form labels for loggers
    seed: int = 42  # seeds torch, numpy, python and the data order
    ckpt_path: str | None = None  # checkpoint to resume from; "last" = <output_dir>/checkpoints/last.ckpt
    export_pretrained: bool = True  # save config.json + model.safetensors after training
    optimized_metric: str | None = None  # metric returned to a sweeper; None = none
    divergence: DivergenceConfig = field(default_factory=DivergenceConfig)  # divergence limits
    data: Any = None
    model: Any = None
    callbacks: Any = None
    logger: Any = None
    trainer: Any = None
    paths: Any = None
    experiment: Any = None
    hparams_search: Any = None
    debug: Any = None


def register_configs() -> None:
    """Register the schema and the resolvers (idempotent)."""
    ConfigStore.instance().store(name="genface_run_schema", node=RunSchema)
    if not OmegaConf.has_resolver("genface.wandb_offline"):
        OmegaConf.register_new_resolver("genface.wandb_offline", wandb_offline)


def wandb_offline() -> bool:
    """True unless a W&B API key is configured (env WANDB_API_KEY or ~/.netrc); WANDB_MODE wins."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode in ("offline", "disabled", "dryrun")
    if os.environ.get("WANDB_API_KEY"):
        return False
    netrc = Path.home() / ".netrc"
    return not (netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore"))


def _import(target: str):
    module, _, name = target.rpartition(".")
    try:
        obj = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"_target_ {target!r} cannot be imported: {e}") from e


_SIMPLE = {int: (int,), float: (int, float), bool: (bool,), str: (str,)}


def _simple_type(annotation: Any):
    if isinstance(annotation, str):  # postponed annotations
        annotation = {"int": int, "float": float, "bool": bool, "str": str}.get(annotation)
    return annotation if annotation in _SIMPLE else None


def _check_simple(path: str, name: str, value: Any, annotation: type) -> None:
    ok = _SIMPLE[annotation]
    if value is None or OmegaConf.is_config(value):
        return
    if isinstance(value, bool) and annotation is not bool:
        ok = ()
    if not isinstance(value, ok):
        raise ConfigError(f"{path}.{name}: expected {annotation.__name__}, got {type(value).__name__} {value!r}")


#: Keys that must hold a number > 0 (``>= 0`` for :data:`_NON_NEGATIVE`) in any ``_target_`` node.
_POSITIVE = ("batch_size", "resolution", "num_images", "num_identities", "z_dim", "w_dim", "lr", "lr_g", "lr_d")
_NON_NEGATIVE = ("num_workers", "val_size")


def _check_ranges(node: DictConfig, path: str, keys: list[str]) -> None:
    for k in keys:
        if k not in _POSITIVE and k not in _NON_NEGATIVE:
            continue
        try:
            value = node[k]
        except OmegaConfBaseException:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if k in _POSITIVE and not value > 0:
            raise ConfigError(f"{path}.{k}: must be > 0, got {value!r}")
        if k in _NON_NEGATIVE and value < 0:
            raise ConfigError(f"{path}.{k}: must be >= 0, got {value!r}")


def _unknown_keys_message(path: str, unknown: list[str], target: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(str(unknown[0]), [str(v) for v in valid], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{path}: unknown key(s) {unknown} for {target}{hint}; valid keys: {valid}"


def _validate_node(node: DictConfig, path: str) -> None:
    target = node.get("_target_")
    if not isinstance(target, str):
        return
    obj = _import(target)
    keys = [k for k in node.keys() if not str(k).startswith("_")]
    _check_ranges(node, path, keys)
    config_class = getattr(obj, "config_class", None)
    if config_class is not None and dataclasses.is_dataclass(config_class):
        valid = [f.name for f in dataclasses.fields(config_class)]
        unknown = [k for k in keys if k not in valid]
        if unknown:
            raise ConfigError(_unknown_keys_message(path, unknown, target, valid))
        try:
            plain = OmegaConf.create({k: node[k] for k in keys})
            OmegaConf.merge(OmegaConf.structured(config_class), plain)
        except OmegaConfBaseException as e:
            key = getattr(e, "full_key", None) or getattr(e, "key", None) or "?"
            raise ConfigError(f"{path}.{key}: {str(e).splitlines()[0]} (in {target})") from e
        return
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return
    params = sig.parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return
    unknown = [k for k in keys if k not in params]
    if unknown:
        valid = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        raise ConfigError(_unknown_keys_message(path, unknown, target, valid))
    for k in keys:
        simple = _simple_type(params[k].annotation)
        if simple is not None and not OmegaConf.is_missing(node, k):
            _check_simple(path, k, node[k], simple)


def validate_config(cfg: DictConfig) -> None:
    """Check every ``_target_`` node of ``cfg`` (see the module docstring); raise :class:`ConfigError`."""

    def walk(node: Any, path: str) -> None:
        if isinstance(node, DictConfig):
            _validate_node(node, path)
            for k in node.keys():
                if k == "hydra" or OmegaConf.is_missing(node, k):
                    continue
                walk(node._get_node(k), f"{path}.{k}" if path else str(k))
        elif isinstance(node, ListConfig):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(cfg, "")
