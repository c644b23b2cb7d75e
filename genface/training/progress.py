"""Progress that a log file can follow: plain lines outside a terminal, steps not epochs.

genface trains for ``max_steps`` with ``max_epochs=-1``, so Lightning's bars read
"Epoch 499/-2"; and redirected to a file, a rich bar prints nothing until the end.

* :class:`PlainProgress`: outside a TTY (or always), one line every ``every_n_steps`` steps:
  step and images seen, images/s, the main losses and the ETA; the rich/tqdm bar is turned
  off there. It also makes sure ``metrics.csv`` (and every logger) gets the last step's
  losses even when the run is shorter than ``trainer.log_every_n_steps``, and hides
  Lightning's advertising line ("Tip: ... litlogger").
* :class:`StepProgressBar`: Lightning's rich bar described by step (``step 120/3000``)
  instead of by epoch, for terminals.
"""

from __future__ import annotations

import logging
import math
import sys
import time

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

from genface.training.callbacks import Throughput

__all__ = ["PlainProgress", "StepProgressBar", "hide_lightning_tips", "format_duration"]


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("Tip:" in msg and "litlogger" in msg.lower())


def hide_lightning_tips() -> None:
    """Drop Lightning's "Tip: ... install litlogger" advertisement from its log (idempotent)."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        lg = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in lg.filters):
            lg.addFilter(_DropTips())


def format_duration(seconds: float) -> str:
    """``3725`` -> ``"1h02m05s"``; ``"?"`` when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    h, m, s = s // 3600, s % 3600 // 60, s % 60
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class PlainProgress(L.Callback):
    """Plain progress lines, e.g. ``step 200/3000 | 6,400 images | 41.2 img/s | train/loss 0.21 | ETA 1m08s``.

    Args:
        every_n_steps: a line every this many optimiser steps (and one at the end).
        when: "auto" = only when stdout is not a terminal (a log file, CI, a batch job), where
            the progress bar is then disabled; "always"; "never" (only the metrics.csv and
            advertising fixes).
        max_losses: at most this many ``train/*`` values per line (the first logged ones:
            the total and the per-part losses).
        stream: where lines go; None = ``sys.stdout``.
    """

    def __init__(self, every_n_steps: int = 50, when: str = "auto", max_losses: int = 4, stream=None):
        if when not in ("auto", "always", "never"):
            raise ValueError(f"when must be 'auto', 'always' or 'never', got {when!r}")
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps, self.when, self.max_losses = every_n_steps, when, max_losses
        self.stream = stream
        self.enabled = False
        self.images = 0
        self._t0: float | None = None
        self._step0 = 0
        self._images_at_t0 = 0
        self._last_logged_step = -1
        self.lines: list[str] = []
        hide_lightning_tips()

    def _out(self):
        return self.stream if self.stream is not None else sys.stdout

    def setup(self, trainer, pl_module, stage: str) -> None:
        hide_lightning_tips()
        out = self._out()
        tty = bool(getattr(out, "isatty", lambda: False)())
        self.enabled = self.when == "always" or (self.when == "auto" and not tty)
        bar = trainer.progress_bar_callback
        if self.enabled and bar is not None and not tty:
            bar.disable()  # a bar in a log file is silent until the end (or a mess)

    def on_train_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()
        self._step0 = trainer.global_step
        self._images_at_t0 = self.images

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.images += Throughput._batch_size(batch) * trainer.world_size
        step = trainer.global_step
        if self.enabled and trainer.is_global_zero and step % self.every_n_steps == 0 and step != self._last_line_step:
            self._print(trainer, step)

    _last_line_step = -1

    def line(self, trainer, step: int) -> str:
        """The progress line for ``step``."""
        elapsed = time.perf_counter() - (self._t0 or time.perf_counter())
        done = step - self._step0
        rate = (self.images - self._images_at_t0) / elapsed if elapsed > 0 else float("nan")
        max_steps = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        eta = elapsed / done * (max_steps - step) if max_steps and done > 0 else float("nan")
        losses = [(k, v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")]
        parts = [f"step {step:,}" + (f"/{max_steps:,}" if max_steps else ""), f"{self.images:,} images",
                 f"{rate:.1f} img/s"]
        if losses:
            parts.append(" ".join(f"{k} {float(v):.4g}" for k, v in losses[: self.max_losses]))
        parts.append(f"ETA {format_duration(eta)}" if max_steps else f"elapsed {format_duration(elapsed)}")
        return " | ".join(parts)

    def _print(self, trainer, step: int) -> None:
        text = self.line(trainer, step)
        self.lines.append(text)
        print(text, file=self._out(), flush=True)
        self._last_line_step = step

    def on_train_end(self, trainer, pl_module) -> None:
        step = trainer.global_step
        if self.enabled and trainer.is_global_zero and step != self._last_line_step:
            self._print(trainer, step)
        # metrics.csv even for a run shorter than log_every_n_steps: log the last losses if the
        # last step was not logged by Lightning (it logs when (step + 1) % every == 0 on batch idx)
        every = max(1, int(getattr(trainer, "log_every_n_steps", 1) or 1))
        if step and step % every and trainer.is_global_zero:
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                       if k.startswith("train/") and v.numel() == 1}
            for logger in trainer.loggers:
                if metrics:
                    logger.log_metrics(metrics, step=step - 1)
                logger.save()


class StepProgressBar(RichProgressBar):
    """Lightning's rich progress bar, described by step (``step 120/3000``) instead of by
    epoch (which reads "Epoch 3/-2" for step-budgeted runs). Same arguments as
    :class:`~lightning.pytorch.callbacks.RichProgressBar`."""

    def _get_train_description(self, current_epoch: int) -> str:
        ms = self.trainer.max_steps
        desc = f"step {self.trainer.global_step}" + (f"/{ms}" if ms and ms > 0 else "")
        if len(self.validation_description) > len(desc):
            desc = f"{desc:{len(self.validation_description)}}"
        return desc
