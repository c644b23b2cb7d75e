"""The resolved config of a run, printed as a tree when a CLI starts (rich).

One branch per config group, in the order a reader wants them (data, model, then the
training machinery), each with its YAML resolved (``${paths.output_dir}`` and friends
filled in). Printed on the first process only, and skipped when ``GENFACE_QUIET=1``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf

ORDER = ("data", "model", "callbacks", "logger", "trainer", "paths")


def _is_rank_zero() -> bool:
    return all(os.environ.get(k, "0") == "0" for k in ("RANK", "LOCAL_RANK", "SLURM_PROCID"))


def config_tree(cfg: DictConfig, order: Sequence[str] = ORDER, resolve: bool = True):
    """The config as a :class:`rich.tree.Tree`: the groups in ``order``, then the other keys.

    Args:
        cfg: the composed config.
        order: the branches to show first, in this order.
        resolve: fill in interpolations (falls back on the raw value where one cannot be).
    """
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("config", style="dim", guide_style="dim")
    keys = [k for k in order if k in cfg] + [k for k in cfg if k not in order]
    for key in keys:
        branch = tree.add(str(key), style="bold", guide_style="dim")
        node = cfg[key] if not OmegaConf.is_missing(cfg, key) else "???"
        if isinstance(node, DictConfig):
            try:
                text = OmegaConf.to_yaml(node, resolve=resolve)
            except Exception:  # an interpolation that needs a running Hydra app
                text = OmegaConf.to_yaml(node, resolve=False)
        else:
            text = str(node)
        branch.add(Syntax(text.rstrip() or "null", "yaml", theme="ansi_dark", background_color="default"))
    return tree


def print_config_tree(cfg: DictConfig, order: Sequence[str] = ORDER) -> None:
    """Print :func:`config_tree` to stdout (first process only; ``GENFACE_QUIET=1`` silences it)."""
    if os.environ.get("GENFACE_QUIET") == "1" or not _is_rank_zero():
        return
    from rich.console import Console

    Console().print(config_tree(cfg, order))
