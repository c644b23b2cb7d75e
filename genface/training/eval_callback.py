"""Learning curves: registered metrics evaluated during training, every N images.

NVlabs ``stylegan2-ada-pytorch`` evaluates its metrics at every network snapshot
(``training_loop.py``, ``metrics=['fid50k_full']`` with ``snap``) and appends them to
``metric-*.jsonl``; :class:`EvalEvery` does the same with genface's metric registry
(:mod:`genface.metrics`) and writes the values through the run's loggers, so that
``metrics.csv`` (CSVLogger) holds one row per evaluation with the columns

* ``metric/<name>`` (and ``metric/<name>/<part>`` for metrics with parts, e.g.
  ``metric/recon1k/mae``),
* ``images``: training images seen so far,
* ``train_s``: training wall time so far, not counting these evaluations
  (:class:`genface.training.budget.TimeBudget` does not count them either).

``genface-compare`` adds it to every run with ``eval_every_images`` (and reads the curves
back with :func:`read_curves`).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from genface.training.callbacks import Throughput


def reference_dataset(datamodule: Any) -> Any:
    """The real images a datamodule's model is measured against (its ``dataset`` when its
    items carry an ``"image"``; FaceSwap's swap pairs give their A faces), else ``None``."""
    ds = getattr(datamodule, "dataset", None)
    if ds is None:
        return None
    try:
        return ds if "image" in ds[0] else None
    except (IndexError, KeyError, TypeError):
        return None


def available_needs(inputs: dict[str, Any]) -> set[str]:
    """What a module's :meth:`metric_inputs` can supply, as :data:`genface.metrics.NEEDS` names."""
    have = {"reference"}
    if "generator_fn" in inputs:
        have.add("generator")
    if "recon_fn" in inputs:
        have.add("autoencoder")
    if "model" in inputs:
        have.add("stylegan_mapping")
    if "swap_fn" in inputs and "swap_data" in inputs:  # a swapper and the faces to judge its swaps on
        have.add("swapper")
    return have


def metric_kwargs(inputs: dict[str, Any]) -> dict[str, Any]:
    """The part of :meth:`metric_inputs` that :func:`genface.metrics.compute_metrics` accepts
    (a swapper's ``swap_fn`` is passed only once the registry takes it)."""
    import inspect

    from genface.metrics import compute_metrics

    accepted = inspect.signature(compute_metrics).parameters
    return {k: v for k, v in inputs.items() if k in accepted}


class EvalEvery(L.Callback):
    """Evaluates registered metrics every ``every_n_images`` training images and at the end.

    Each evaluation runs on rank zero with the module in eval mode (the EMA generator where
    the module samples from it), then restores train mode; its duration is kept in
    :attr:`eval_seconds` and excluded from ``train_s``. Metrics the model cannot supply
    (a GAN has no reconstruction) are skipped, with a log line once.

    Args:
        metrics: registry names (:func:`genface.metrics.list_metrics`), e.g.
            ``["fsd_synth1k"]``; keep them cheap, they run many times.
        every_n_images: interval in training images (rounded to whole steps); 0 = only at the end.
        reference_key: cache name of the reference statistics (as :func:`genface.metrics.compute_metrics`);
            ``None`` = a hash of the reference's pixels.
        seed: seed of the generated images (the same at every evaluation, so that curves
            show the model changing, not the sample).
        at_end: also evaluate after the last step.
    """

    def __init__(self, metrics: Sequence[str] = ("fsd_synth1k",), every_n_images: int = 3200,
                 reference_key: str | None = None, seed: int = 0, at_end: bool = True):
        if every_n_images < 0:
            raise ValueError(f"every_n_images must be >= 0, got {every_n_images}")
        self.metrics, self.every_n_images = list(metrics), int(every_n_images)
        self.reference_key, self.seed, self.at_end = reference_key, seed, at_end
        self.images = 0  # training images seen (all ranks)
        self.train_seconds = 0.0  # training wall time before this fit (resumed runs)
        self.eval_seconds = 0.0
        self.next_at = self.every_n_images
        self.history: list[dict[str, float]] = []
        self._t0: float | None = None
        self._eval_this_fit = 0.0
        self._last_eval_images = -1
        self._names: list[str] | None = None

    # ------------------------------------------------------------------ time and images
    def on_train_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()
        self._eval_this_fit = 0.0

    def elapsed_train_seconds(self) -> float:
        """Training wall time so far (earlier fits of a resumed run included), evaluations excluded."""
        if self._t0 is None:
            return self.train_seconds
        return self.train_seconds + time.perf_counter() - self._t0 - self._eval_this_fit

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.images += Throughput._batch_size(batch) * trainer.world_size
        if self.every_n_images and self.images >= self.next_at:
            while self.next_at <= self.images:
                self.next_at += self.every_n_images
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.at_end and self.images != self._last_eval_images:
            self.evaluate(trainer, pl_module)

    # ------------------------------------------------------------------ evaluation
    def _applicable(self, pl_module, inputs: dict[str, Any]) -> list[str]:
        if self._names is None:
            from genface.metrics import get_metric

            have = available_needs(inputs)
            self._names, skipped = [], []
            for name in self.metrics:
                spec = get_metric(name)  # an unknown name fails here, at the first evaluation
                (self._names if set(spec.needs) <= have and not spec.unavailable_reason() else skipped).append(name)
            if skipped:
                rank_zero_info(f"EvalEvery: {type(pl_module.net).__name__} cannot supply {skipped}; not evaluated")
        return self._names

    def evaluate(self, trainer, pl_module) -> dict[str, float]:
        """Evaluate now and log ``metric/*``, ``images`` and ``train_s`` at the current step."""
        from genface.metrics import compute_metrics

        self._last_eval_images = self.images
        if not trainer.is_global_zero:
            return {}
        reference = reference_dataset(trainer.datamodule)
        inputs = pl_module.metric_inputs()
        names = self._applicable(pl_module, inputs)
        if not names or reference is None:
            return {}
        t0 = time.perf_counter()
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                values = compute_metrics(names, reference=reference, device=pl_module.device,
                                         reference_key=self.reference_key, seed=self.seed, **metric_kwargs(inputs))
        finally:
            pl_module.train(was_training)
        spent = time.perf_counter() - t0
        self.eval_seconds += spent
        self._eval_this_fit += spent
        row = {f"metric/{k}": float(v) for k, v in values.items()
               if not k.endswith("/seconds") and not k.split("/")[-1].startswith("num_")}
        row.update(images=float(self.images), train_s=self.elapsed_train_seconds(), eval_s=spent)
        self.history.append(row)
        for logger in trainer.loggers:
            logger.log_metrics(row, step=trainer.global_step)
        return row

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        return {"images": self.images, "train_seconds": self.elapsed_train_seconds(),
                "eval_seconds": self.eval_seconds, "next_at": self.next_at}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.images = int(state_dict.get("images", 0))
        self.train_seconds = float(state_dict.get("train_seconds", 0.0))
        self.eval_seconds = float(state_dict.get("eval_seconds", 0.0))
        self.next_at = int(state_dict.get("next_at", self.every_n_images))


def read_curves(metrics_csv: str | Path) -> dict[str, list[tuple[float, float, float]]]:
    """The learning curves in a run's ``metrics.csv``: ``{metric: [(images, train_s, value), ...]}``
    (metric names without the ``metric/`` prefix); empty when the file or the columns are missing."""
    path = Path(metrics_csv)
    if not path.is_file():
        return {}
    with open(path) as f:
        rows = list(csv.DictReader(f))
    curves: dict[str, list[tuple[float, float, float]]] = {}
    for r in rows:
        if r.get("images") in (None, ""):
            continue
        for k, v in r.items():
            if k.startswith("metric/") and v not in (None, ""):
                curves.setdefault(k.removeprefix("metric/"), []).append(
                    (float(r["images"]), float(r.get("train_s") or "nan"), float(v)))
    return curves
