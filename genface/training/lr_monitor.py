"""Learning-rate logging with names that say which network: ``lr_g`` and ``lr_d``, not ``lr-Adam-1``.

Lightning's :class:`~lightning.pytorch.callbacks.LearningRateMonitor` names an optimiser that
has no scheduler after its class (``lr-Adam``, then ``lr-Adam-1``). :class:`LRMonitor` names
the optimisers of a training module, in the order ``configure_optimizers`` returns them, from

1. ``names`` given to the callback, else
2. the module's ``optimizer_names`` attribute, if it has one, else
3. ``("lr_g", "lr_d")`` for two optimisers (every genface GAN module returns generator, then
   discriminator) and ``("lr",)`` for one.

Schedulers configured with a ``name`` keep it (Lightning's rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning.pytorch.callbacks import LearningRateMonitor

DEFAULT_NAMES = {1: ("lr",), 2: ("lr_g", "lr_d")}


class LRMonitor(LearningRateMonitor):
    """:class:`~lightning.pytorch.callbacks.LearningRateMonitor` with per-network names.

    Args:
        names: one name per optimiser, in ``configure_optimizers`` order; ``None`` = the
            module's ``optimizer_names`` or the defaults above.
        **kwargs: passed to :class:`~lightning.pytorch.callbacks.LearningRateMonitor`
            (``logging_interval``, ``log_momentum``, ``log_weight_decay``).
    """

    def __init__(self, names: Sequence[str] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.names = tuple(names) if names is not None else None
        self._module_names: tuple[str, ...] | None = None

    def on_train_start(self, trainer, *args: Any, **kwargs: Any) -> None:
        names = getattr(trainer.lightning_module, "optimizer_names", None)
        self._module_names = tuple(names) if names is not None else None
        super().on_train_start(trainer, *args, **kwargs)

    def _names_for(self, count: int) -> tuple[str, ...] | None:
        names = self.names or self._module_names or DEFAULT_NAMES.get(count)
        if names is not None and len(names) != count:
            raise ValueError(f"LRMonitor got {len(names)} names {names} for {count} optimisers")
        return names

    def _find_names_from_optimizers(self, optimizers, seen_optimizers, seen_optimizer_types):
        # Lightning's names (lr-Adam, lr-Adam-1, ...[/param-group]) with the prefix replaced.
        keys, without_scheduler = super()._find_names_from_optimizers(
            optimizers, seen_optimizers=seen_optimizers, seen_optimizer_types=seen_optimizer_types)
        names = self._names_for(len(optimizers))
        if names is None:
            return keys, without_scheduler
        index = {id(o.optimizer if hasattr(o, "optimizer") else o): i for i, o in enumerate(optimizers)}
        renamed = []
        for opt, group in zip(without_scheduler, keys):
            new = names[index[id(opt)]]
            renamed.append([new + k[len(k.split("/")[0]):] for k in group])
        return renamed, without_scheduler
