"""Training callbacks: EMA of generator weights, sample grids from fixed latents."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torchvision
from lightning.pytorch.utilities import rank_zero_info

from genface.provenance import save_png


def batch_images(batch: Any) -> int:
    """Training images in a batch: ``image``, or ``image_a`` + ``image_b`` for swap pairs (0 if neither)."""
    if not isinstance(batch, dict):
        return 0
    if "image_a" in batch:
        return sum(batch[k].shape[0] for k in ("image_a", "image_b") if k in batch)
    image = batch.get("image")
    return image.shape[0] if torch.is_tensor(image) else 0


def ema_beta(batch_images: int, images_seen: int, ema_kimg: float, ema_rampup: float | None = None) -> float:
    """NVlabs' EMA decay per update (stylegan2-ada-pytorch ``training_loop.py``): the average's
    half-life is ``ema_kimg`` thousand images, ramped up as ``min(ema_kimg · 1000, images_seen ·
    ema_rampup)`` so that a short run's average is not dominated by its start;
    ``beta = 0.5 ** (batch_images / ema_nimg)``.

    Args:
        batch_images: images seen since the previous update (all ranks together).
        images_seen: images seen before this update (0 at the first step: ``beta = 0``, a copy).
        ema_kimg: half-life in thousands of images (StyleGAN2 config F: 10; ``auto``: batch · 10/32).
        ema_rampup: ramp-up ratio (stylegan2-ada: 0.05 for ``auto`` and ``cifar``); None = no ramp-up.
    """
    ema_nimg = ema_kimg * 1000.0
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, images_seen * ema_rampup)
    return 0.5 ** (batch_images / max(ema_nimg, 1e-8))


class EMA(L.Callback):
    """Exponential moving average of the generator's weights (Karras et al. 2018, ProGAN §A.1;
    Yazıcı et al. 2019): theta_ema ← beta · theta_ema + (1 − beta) · theta after each step.

    The EMA copy is kept here (saved in checkpoints as this callback's state) and handed to
    the module as ``pl_module.ema`` for sampling and export. Buffers (BatchNorm statistics,
    StyleGAN's w_avg) are copied, not averaged.

    Two ways to set beta:

    * ``ema_kimg`` (NVlabs StyleGAN/StyleGAN2): a half-life in images, so the average spans
      the same images whatever the batch size; see :func:`ema_beta`. The callback counts the
      images itself (``batch_images`` of each batch times the world size; saved in checkpoints).
    * ``decay`` (when ``ema_kimg`` is None): a fixed beta per step, reached after a warm-up of
      ``min(decay, (1 + n) / (10 + n))`` at step n after ``start_step``.

    Args:
        decay: beta per update when ``ema_kimg`` is None; StyleGAN uses 0.5^(32 / 10k images)
            per batch of 32 (about 0.998).
        start_step: steps before averaging starts (the copy tracks the weights exactly until then).
        every_n_steps: update interval in steps.
        ema_kimg: half-life of the average in thousands of images (StyleGAN2: 10); None = use ``decay``.
        ema_rampup: with ``ema_kimg``, the half-life is at most ``images_seen · ema_rampup``
            (stylegan2-ada: 0.05); None = no ramp-up.
    """

    def __init__(self, decay: float = 0.999, start_step: int = 0, every_n_steps: int = 1,
                 ema_kimg: float | None = None, ema_rampup: float | None = None):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        if ema_kimg is not None and ema_kimg < 0:
            raise ValueError(f"ema_kimg must be >= 0 or None, got {ema_kimg}")
        if ema_rampup is not None and ema_rampup <= 0:
            raise ValueError(f"ema_rampup must be > 0 or None, got {ema_rampup}")
        self.decay, self.start_step, self.every_n_steps = decay, start_step, every_n_steps
        self.ema_kimg, self.ema_rampup = ema_kimg, ema_rampup
        self.images_seen = 0  # images before the current batch (counted for ema_kimg)
        self._pending = 0  # images since the last update
        self.module: torch.nn.Module | None = None
        self.enabled = True
        self._state_to_load: dict[str, Any] | None = None

    def _target(self, pl_module) -> torch.nn.Module:
        return pl_module.net.generator

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.enabled = hasattr(pl_module.net, "generator")
        if not self.enabled:
            rank_zero_info(f"EMA: {type(pl_module.net).__name__} has no generator; EMA is off for this run")
            return
        if self.module is None:
            self.module = copy.deepcopy(self._target(pl_module)).eval().requires_grad_(False)
        if self._state_to_load is not None:
            self.module.load_state_dict(self._state_to_load)
            self._state_to_load = None
        pl_module.ema = self

    def on_fit_start(self, trainer, pl_module) -> None:
        if self.enabled:
            self.module.to(pl_module.device)

    def current_beta(self, step: int) -> float:
        """beta for an update at ``step`` (``images_seen`` and the pending images for ``ema_kimg``)."""
        if self.ema_kimg is not None:
            return ema_beta(self._pending, self.images_seen, self.ema_kimg, self.ema_rampup)
        # warm-up (as TensorFlow's ExponentialMovingAverage with num_updates): early on the
        # average follows the weights closely, so that a short run's EMA is not mostly its init
        n = step - self.start_step
        return 0.0 if n <= 0 else min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.enabled:
            return
        self._pending += batch_images(batch) * trainer.world_size
        step = trainer.global_step
        if step % self.every_n_steps:
            return
        decay = self.current_beta(step)
        self.images_seen += self._pending
        self._pending = 0
        src = self._target(pl_module)
        for e, p in zip(self.module.parameters(), src.parameters()):
            e.lerp_(p.detach(), 1.0 - decay)
        for e, b in zip(self.module.buffers(), src.buffers()):
            e.copy_(b)

    def state_dict(self) -> dict[str, Any]:
        if not self.module:
            return {}
        return {"ema": {k: v.detach().cpu() for k, v in self.module.state_dict().items()},
                "images_seen": self.images_seen, "pending": self._pending}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.images_seen = int(state_dict.get("images_seen", 0))
        self._pending = int(state_dict.get("pending", 0))
        if "ema" in state_dict:
            if self.module is not None:
                self.module.load_state_dict(state_dict["ema"])
            else:
                self._state_to_load = state_dict["ema"]


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
        grid = torchvision.utils.make_grid((images + 1) / 2, nrow=int(self.n**0.5 + 0.5), padding=2, pad_value=1.0)
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
