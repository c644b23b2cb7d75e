"""A wall-clock training budget: stop after ``max_seconds`` of training, whatever the step.

``genface-compare budget_seconds=...`` gives every model the same training time (beside, or
instead of, the same number of images), which answers "which model is best for my compute".
Unlike Lightning's ``Trainer(max_time=...)`` (its ``Timer`` counts every second of the fit),
the time spent in evaluations of other callbacks that report it (``eval_seconds``, as
:class:`genface.training.eval_callback.EvalEvery`) is not counted, so that a model whose
learning curve is measured more often does not get less training. Validation (a few batches)
is counted. The clock survives resumption (it is saved in checkpoints).
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from genface.training.callbacks import Throughput, evaluation_seconds


class TimeBudget(L.Callback):
    """Stops training once ``max_seconds`` of training wall time have passed.

    Checked after every training batch (a step is never cut short). Records the images
    trained on, so a comparison can report what each model got in the same time.

    Args:
        max_seconds: the budget in seconds of training wall time; ``None`` or 0 = no limit
            (the callback then only measures).
    """

    def __init__(self, max_seconds: float | None = None):
        if max_seconds is not None and max_seconds < 0:
            raise ValueError(f"max_seconds must be >= 0 or None, got {max_seconds}")
        self.max_seconds = max_seconds or None
        self.seconds_before = 0.0  # training time of earlier fits (resumed runs)
        self.images = 0
        self.stopped_early = False
        self._t0: float | None = None
        self._trainer: Any = None
        self._eval_at_start = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self._t0, self._trainer = time.perf_counter(), trainer
        self._eval_at_start = evaluation_seconds(trainer)

    def elapsed(self, trainer) -> float:
        """Training seconds so far, evaluations by other callbacks excluded."""
        if self._t0 is None:
            return self.seconds_before
        evals = evaluation_seconds(trainer) - self._eval_at_start
        return self.seconds_before + time.perf_counter() - self._t0 - evals

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.images += Throughput._batch_size(batch) * trainer.world_size
        if self.max_seconds is None:
            return
        stop = trainer.strategy.broadcast(self.elapsed(trainer) >= self.max_seconds)  # rank 0 decides
        if stop and not trainer.should_stop:
            self.stopped_early = True
            trainer.should_stop = True
            rank_zero_info(f"TimeBudget: {self.max_seconds:g} s of training reached at step "
                           f"{trainer.global_step} ({self.images:,} images); stopping")

    def state_dict(self) -> dict[str, Any]:
        seconds = self.elapsed(self._trainer) if self._trainer is not None else self.seconds_before
        return {"seconds": seconds, "images": self.images, "stopped_early": self.stopped_early}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seconds_before = float(state_dict.get("seconds", 0.0))
        self.images = int(state_dict.get("images", 0))
        self.stopped_early = bool(state_dict.get("stopped_early", False))
