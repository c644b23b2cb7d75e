"""Training callbacks: sample grids from fixed latents, throughput.

The generator EMA is not a callback: :class:`genface.training.gan.GANModule` keeps ``G_ema``
in its own state (:mod:`genface.training.objective`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

from genface.provenance import save_png
from genface.utils import make_grid


def batch_images(batch: Any) -> int:
    """Training images in a batch: ``image``, or ``image_a`` + ``image_b`` for swap pairs (0 if neither)."""
    if not isinstance(batch, dict):
        return 0
    if "image_a" in batch:
        return sum(batch[k].shape[0] for k in ("image_a", "image_b") if k in batch)
    image = batch.get("image")
    return image.shape[0] if torch.is_tensor(image) else 0


class SampleGrid(L.Callback):
    """Writes a grid of samples every ``every_n_steps`` steps and at the end of training.

    Latents are fixed (``seed``), so successive grids show the same samples evolving. PNGs
    carry the synthetic provenance mark; loggers that take images (TensorBoard, wandb) get
    them too.

    Args:
        every_n_steps: interval in training steps; 0 = only at the end.
        n: number of samples (a square number makes a square grid).
        seed: seed of the fixed latents.
        dirname: sub-folder of the run's log dir for the PNGs.
    """

    def __init__(self, every_n_steps: int = 500, n: int = 64, seed: int = 0, dirname: str = "samples"):
        self.every_n_steps, self.n, self.seed, self.dirname = every_n_steps, n, seed, dirname
        self.last_path: Path | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if self.every_n_steps and step > 0 and step % self.every_n_steps == 0:
            self.write(trainer, pl_module, step)

    def on_train_end(self, trainer, pl_module) -> None:
        self.write(trainer, pl_module, trainer.global_step)

    def write(self, trainer, pl_module, step: int) -> Path | None:
        # trainer.log_dir is a collective under DDP (a broadcast): every rank must ask for it
        root = Path(trainer.log_dir or trainer.default_root_dir) / self.dirname
        if not trainer.is_global_zero:
            return None
        images = pl_module.sample_images(self.n, seed=self.seed).float().cpu()
        grid = make_grid((images + 1) / 2, nrow=int(self.n**0.5 + 0.5), padding=2, pad_value=1.0)
        path = save_png(grid, root / f"step_{step:07d}.png", {"step": step, "model": type(pl_module.net).__name__},
                        model=pl_module)
        self.last_path = path
        for logger in trainer.loggers:
            exp = getattr(logger, "experiment", None)
            if hasattr(exp, "add_image"):  # TensorBoard
                exp.add_image("samples", grid, step)
            elif type(logger).__name__ == "WandbLogger":
                logger.log_image("samples", [grid], step=step)
        return path


def evaluation_seconds(trainer) -> float:
    """Seconds spent so far in evaluations by callbacks that report them in ``eval_seconds``
    (:class:`genface.training.eval_callback.EvalEvery`); training clocks leave them out."""
    return sum(float(getattr(c, "eval_seconds", 0.0)) for c in trainer.callbacks)


class Throughput(L.Callback):
    """Measures training throughput: images per second between the first batch and the end.

    The first ``warmup_steps`` batches (allocator and cache warm-up) are not counted, nor is
    time spent in other callbacks' evaluations (:func:`evaluation_seconds`).

    Args:
        warmup_steps: batches excluded from the measurement.
    """

    def __init__(self, warmup_steps: int = 2):
        self.warmup_steps = warmup_steps
        self.images = 0
        self.seconds = 0.0
        self._t0: float | None = None
        self._seen = 0

    #: images in a batch (kept for the callbacks that call ``Throughput._batch_size``)
    _batch_size = staticmethod(batch_images)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._seen == self.warmup_steps:
            self._sync(pl_module)
            self._t0 = time.perf_counter()
            self._evals0 = evaluation_seconds(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._seen += 1
        if self._t0 is not None:
            self.images += batch_images(batch) * trainer.world_size

    def on_train_end(self, trainer, pl_module) -> None:
        if self._t0 is not None:
            self._sync(pl_module)
            self.seconds = time.perf_counter() - self._t0 - (evaluation_seconds(trainer) - self._evals0)

    @staticmethod
    def _sync(pl_module) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("nan")
