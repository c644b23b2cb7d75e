"""Behaviour shared by every genface LightningModule: exact resume, NaN guards, sampling."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from genface.errors import CheckpointMismatchError, NonFiniteLossError, TooManySkippedStepsError
from genface.models.base import non_finite_tensors


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": np_state[0], "pos": torch.as_tensor(np_state[1].astype(np.int64)),
                  "rest": [int(np_state[2]), int(np_state[3]), float(np_state[4])]},
        "python": _py_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _py_state_to_plain(state):
    version, internal, gauss = state
    return {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}


def _finite_or_none(x: Any) -> Any:
    """``x`` with every NaN/Inf float replaced by ``None`` (strict JSON has no NaN)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_none(v) for v in x]
    return x


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["key"], n["pos"].numpy().astype(np.uint32), *n["rest"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(x) for x in p["internal"].tolist()), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


#: Default of ``divergence.loss_limit``: a loss whose magnitude exceeds it counts as diverged.
DEFAULT_LOSS_LIMIT = 1e8
#: Default of ``divergence.max_skipped_fraction``: share of skipped steps above which a run fails.
DEFAULT_MAX_SKIPPED_FRACTION = 0.5


class FiniteGuard(L.Callback):
    """Watches a :class:`GenerativeModule`'s parameters, buffers and skipped steps.

    Added by :meth:`GenerativeModule.configure_callbacks`, so every trainer of a genface module
    has it (whatever ``callbacks`` the run configures, and whatever batch hooks a subclass
    overrides).

    * Before each batch (``nan_policy=skip`` only) it snapshots the module's buffers (e.g.
      BatchNorm ``running_mean``/``running_var``/``num_batches_tracked``), so that a skipped
      step can put back what its forward pass changed (:meth:`GenerativeModule.guard_finite`).
    * After each batch it checks every parameter and buffer. A non-finite parameter stops the
      run (an optimiser step cannot be undone); a non-finite buffer stops it under
      ``nan_policy=stop`` and, under ``skip``, is put back to its value before the batch and the
      batch counts as skipped.
    * It counts batches and skipped batches; a run that skipped more than
      ``max_skipped_fraction`` of its batches fails with
      :class:`~genface.errors.TooManySkippedStepsError` and a summary, as soon as that is
      certain (``trainer.max_steps`` known) or at the end of training.
    """

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        pl_module._skipped_in_batch = False
        if pl_module.nan_policy == "skip":
            pl_module._buffers_at_batch_start = pl_module._snapshot_buffers()
            pl_module._buffers_at_segment_start = pl_module._buffers_at_batch_start

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        m = pl_module
        bad_params = non_finite_tensors(dict(m.named_parameters()))
        bad_buffers = non_finite_tensors(dict(m.named_buffers()))
        if trainer.world_size > 1:
            anybad = trainer.strategy.reduce_boolean_decision(bool(bad_params or bad_buffers), all=False)
            if anybad and not (bad_params or bad_buffers):
                bad_buffers = ["(on another process)"]
        if bad_params or (bad_buffers and m.nan_policy == "stop"):
            what = (f"parameters {_short(bad_params)}" if bad_params else "") + \
                   (" and " if bad_params and bad_buffers else "") + \
                   (f"buffers {_short(bad_buffers)}" if bad_buffers else "")
            path = m._write_diagnostic({"non_finite_parameters": bad_params,
                                        "non_finite_buffers": bad_buffers})
            raise NonFiniteLossError(
                f"the network's {what} became non-finite (NaN/Inf) at step {m.global_step}; diagnostic "
                f"written to {path}. The checkpoints written before this step are intact: lower the "
                "learning rate (and resume from the last checkpoint), or set divergence.loss_limit lower "
                "so that the explosion is caught earlier."
            )
        if bad_buffers:  # nan_policy=skip: put the buffers back and count the batch as skipped
            snapshot = getattr(m, "_buffers_at_batch_start", None)
            if snapshot is not None:
                m._restore_buffers(snapshot)
            if not m._skipped_in_batch:
                m._note_skip(f"non-finite buffers {_short(bad_buffers)}")
            m._skipped_in_batch = True
        m.trained_batches += 1
        m.skipped_batches += int(m._skipped_in_batch)
        m._buffers_at_batch_start = m._buffers_at_segment_start = None
        limit = trainer.max_steps
        if limit and limit > 0 and m.skipped_batches > m.max_skipped_fraction * limit:
            raise TooManySkippedStepsError(m._skip_summary(of=limit, certain=True))

    def on_train_end(self, trainer, pl_module) -> None:
        m = pl_module
        if m.trained_batches and m.skipped_batches > m.max_skipped_fraction * m.trained_batches:
            raise TooManySkippedStepsError(m._skip_summary(of=m.trained_batches, certain=False))


def _short_class(name: str | None) -> str:
    return (name or "unknown").rpartition(".")[2]


def _short(names: list[str], n: int = 4) -> str:
    return ", ".join(names[:n]) + (f" (and {len(names) - n} more)" if len(names) > n else "")


class GenerativeModule(L.LightningModule):
    """Base of the genface LightningModules.

    * Saves the RNG states (torch, CUDA, NumPy, Python) in every checkpoint and restores them
      when training resumes, so that a resumed CPU run continues exactly.
    * :meth:`guard_finite` stops (or skips the step) on a NaN/Inf loss, or one whose magnitude
      exceeds ``loss_limit`` (an explosion), and writes a diagnostic JSON next to the logs;
      checkpoints already written are untouched. A skipped step puts back the buffers (e.g.
      BatchNorm running statistics) that its forward pass changed.
    * :class:`FiniteGuard` (always attached) stops the run when a parameter or buffer becomes
      non-finite and when more than ``max_skipped_fraction`` of the steps were skipped.
    * Subclasses implement :meth:`sample_images` (used by the sample-grid callback and the
      comparison) and keep their network as ``self.net``.

    Args:
        nan_policy: ``"stop"`` raises :class:`~genface.errors.NonFiniteLossError`; ``"skip"``
            drops the step and counts it in ``train/skipped_steps``.

    The divergence limits are set after construction with :meth:`configure_divergence`
    (``genface-train`` passes the run config's ``divergence`` section).
    """

    def __init__(self, nan_policy: str = "stop"):
        super().__init__()
        if nan_policy not in ("stop", "skip"):
            raise ValueError(f"nan_policy must be 'stop' or 'skip', got {nan_policy!r}")
        self.nan_policy = nan_policy
        self.skipped_steps = 0  # guarded losses dropped (a GAN batch has two: D and G)
        self.trained_batches = 0  # batches trained on (saved in checkpoints)
        self.skipped_batches = 0  # batches with at least one skipped step
        self.first_skip: dict[str, Any] | None = None
        self._skipped_in_batch = False
        self._buffers_at_batch_start: dict[str, torch.Tensor] | None = None
        self._buffers_at_segment_start: dict[str, torch.Tensor] | None = None
        self._rng_to_restore: dict[str, Any] | None = None
        self.configure_divergence()

    def configure_divergence(self, loss_limit: float | None = DEFAULT_LOSS_LIMIT,
                             max_skipped_fraction: float = DEFAULT_MAX_SKIPPED_FRACTION) -> None:
        """Set the divergence limits.

        Args:
            loss_limit: a loss whose absolute value exceeds this counts as diverged, like a NaN
                (an explosion: with ``lr=1e10`` DCGAN's losses reach 1e21 while staying finite);
                ``None`` = only NaN/Inf count.
            max_skipped_fraction: with ``nan_policy=skip``, a run that skipped more than this
                share of its batches fails with a summary (0 = any skip fails; 1 = never fails).
        """
        if loss_limit is not None and not loss_limit > 0:
            raise ValueError(f"divergence.loss_limit must be > 0 or null, got {loss_limit!r}")
        if not 0.0 <= max_skipped_fraction <= 1.0:
            raise ValueError(f"divergence.max_skipped_fraction must be in [0, 1], got {max_skipped_fraction!r}")
        self.loss_limit = None if loss_limit is None else float(loss_limit)
        self.max_skipped_fraction = float(max_skipped_fraction)

    def configure_callbacks(self):
        return [FiniteGuard()]

    # -- which model wrote a checkpoint ------------------------------------------------
    def model_identity(self) -> dict[str, Any]:
        """What a checkpoint records of the model that wrote it: the family (``model=<family>``,
        the network's class name in lower case), the classes, the network's config and its hash."""
        net = getattr(self, "net", None)
        config = getattr(net, "config", None)
        plain = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else None
        text = json.dumps(plain, sort_keys=True, default=str)
        return {
            "family": type(net).__name__.lower() if net is not None else type(self).__name__.lower(),
            "net_class": f"{type(net).__module__}.{type(net).__qualname__}" if net is not None else None,
            "module_class": f"{type(self).__module__}.{type(self).__qualname__}",
            "config": plain,
            "config_hash": hashlib.sha256(text.encode()).hexdigest()[:16],
        }

    def check_checkpoint_model(self, checkpoint: dict[str, Any], path: Any = None) -> None:
        """Raise :class:`~genface.errors.CheckpointMismatchError` unless ``checkpoint`` was
        written by this model family with this network config.

        Checkpoints written before genface recorded the model are compared by their weight
        names and shapes instead.
        """
        where = f"checkpoint {path}" if path else "the checkpoint"
        mine = self.model_identity()
        theirs = checkpoint.get("genface_model")
        if isinstance(theirs, dict):
            if theirs.get("family") != mine["family"]:
                raise CheckpointMismatchError(
                    f"{where} was written by model={theirs.get('family')} ({_short_class(theirs.get('net_class'))}); "
                    f"this run is model={mine['family']} ({_short_class(mine['net_class'])}). Resume it with "
                    f"model={theirs.get('family')} (and the overrides of the run that wrote it, in "
                    "<run>/.hydra/overrides.yaml), or drop ckpt_path to start afresh."
                )
            if theirs.get("config_hash") != mine["config_hash"] and theirs.get("config") and mine["config"]:
                diff = {k: (theirs["config"].get(k), v) for k, v in mine["config"].items()
                        if theirs["config"].get(k) != v}
                shown = ", ".join(f"{k}: {a!r} in the checkpoint, {b!r} now" for k, a, b in
                                  [(k, *ab) for k, ab in list(diff.items())[:4]])
                raise CheckpointMismatchError(
                    f"{where} was written by model={mine['family']} with another network config ({shown}); "
                    "resume with the checkpoint's settings (<run>/.hydra/overrides.yaml), or drop ckpt_path."
                )
            return
        state = checkpoint.get("state_dict")
        if isinstance(state, dict):
            own = {k: tuple(v.shape) for k, v in self.state_dict().items()}
            missing = [k for k in own if k not in state]
            unexpected = [k for k in state if k not in own]
            wrong = [k for k in own if k in state and tuple(state[k].shape) != own[k]]
            if missing or unexpected or wrong:
                raise CheckpointMismatchError(
                    f"{where} does not fit this run's model={mine['family']} ({_short_class(mine['net_class'])}): "
                    f"{len(missing)} weight(s) missing (first: {missing[:2]}), {len(unexpected)} unexpected "
                    f"(first: {unexpected[:2]}), {len(wrong)} of another shape (first: {wrong[:2]}). It was "
                    "written by another model or config; resume it with the overrides of the run that wrote it."
                )

    # -- exact resume ------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["genface_model"] = self.model_identity()
        checkpoint["genface_rng"] = _rng_state()
        checkpoint["genface_skipped_steps"] = self.skipped_steps
        checkpoint["genface_batches"] = {"trained": self.trained_batches, "skipped": self.skipped_batches}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        ckpt_path = getattr(self._trainer, "ckpt_path", None) if self._trainer is not None else None
        self.check_checkpoint_model(checkpoint, ckpt_path)
        self._rng_to_restore = checkpoint.get("genface_rng")
        self.skipped_steps = checkpoint.get("genface_skipped_steps", 0)
        batches = checkpoint.get("genface_batches") or {}
        self.trained_batches = int(batches.get("trained", 0))
        self.skipped_batches = int(batches.get("skipped", 0))

    def on_train_start(self) -> None:
        if self._rng_to_restore is not None:
            _set_rng_state(self._rng_to_restore)
            self._rng_to_restore = None

    # Validation must not move the training RNG: a resumed run skips the validation that
    # followed its checkpoint, so validation draws would otherwise shift every later draw.
    def on_validation_epoch_start(self) -> None:
        self._rng_before_val = _rng_state()

    def on_validation_epoch_end(self) -> None:
        state = getattr(self, "_rng_before_val", None)
        if state is not None:
            _set_rng_state(state)
            self._rng_before_val = None

    # -- divergence --------------------------------------------------------------------
    def guard_finite(self, losses: dict[str, torch.Tensor], batch: Any = None) -> bool:
        """True when every loss is finite and within ``loss_limit``. Otherwise write a
        diagnostic and stop, or skip: then the buffers are put back as they were before this
        step's forward pass, and the caller must not step."""
        bad: dict[str, float] = {}
        for k, v in losses.items():
            v = v.detach()
            if not torch.isfinite(v).all() or (self.loss_limit is not None and v.abs().max() > self.loss_limit):
                bad[k] = float(v.float().abs().max()) if v.numel() else float("nan")
        if self._trainer is not None and self.trainer.world_size > 1:
            # every rank takes the same decision, so that no rank steps (or waits) alone
            if not self.trainer.strategy.reduce_boolean_decision(bool(bad), all=False):
                self._buffers_at_segment_start = self._snapshot_buffers_if_skipping()
                return True
        elif not bad:
            self._buffers_at_segment_start = self._snapshot_buffers_if_skipping()
            return True
        exploded = sorted(k for k, v in bad.items() if math.isfinite(v))
        path = self._write_diagnostic({
            "losses": {k: float(v.detach().float().mean()) for k, v in losses.items()},
            "non_finite": sorted(k for k in bad if k not in exploded),
            "exploded": exploded, "loss_limit": self.loss_limit,
        }, batch)
        what = ", ".join(f"{k}={v:.3g}" for k, v in sorted(bad.items()))
        if self.nan_policy == "skip":
            if self._buffers_at_segment_start is not None:
                self._restore_buffers(self._buffers_at_segment_start)
            self.skipped_steps += 1
            if not self._skipped_in_batch:
                self._note_skip(f"losses {what}", path)
            self._skipped_in_batch = True
            self.log("train/skipped_steps", float(self.skipped_steps))
            return False
        kind = "non-finite" if not exploded else f"exploding (|loss| > divergence.loss_limit={self.loss_limit:g})"
        raise NonFiniteLossError(
            f"{kind} loss {what} at step {self.global_step}; diagnostic written to {path}. "
            "The last checkpoint written before this step is intact: lower the learning rate, "
            "or set model.nan_policy=skip to drop such steps"
            + (", or raise divergence.loss_limit if such losses are expected." if exploded else ".")
        )

    def _snapshot_buffers(self) -> dict[str, torch.Tensor]:
        return {k: b.detach().clone() for k, b in self.named_buffers()}

    def _snapshot_buffers_if_skipping(self) -> dict[str, torch.Tensor] | None:
        return self._snapshot_buffers() if self.nan_policy == "skip" and self._trainer is not None else None

    @torch.no_grad()
    def _restore_buffers(self, snapshot: dict[str, torch.Tensor]) -> None:
        for k, b in self.named_buffers():
            if k in snapshot:
                b.copy_(snapshot[k])

    def _note_skip(self, why: str, path: Path | None = None) -> None:
        if self.first_skip is None:
            self.first_skip = {"step": int(self.global_step), "why": why, "diagnostic": str(path or "")}

    def _skip_summary(self, of: int, certain: bool) -> str:
        first = self.first_skip or {}
        share = self.skipped_batches / max(of, 1)
        where = Path(self.trainer.default_root_dir) if self._trainer is not None else Path(".")
        return (
            f"nan_policy=skip dropped {self.skipped_batches} of {'the ' + str(of) + ' planned' if certain else of} "
            f"training steps ({share:.0%}), more than divergence.max_skipped_fraction="
            f"{self.max_skipped_fraction:g}; the first at step {first.get('step', '?')} ({first.get('why', '?')}). "
            f"The run diverged and its network is not exported; diagnostics: {where}/nonfinite_step*.json. "
            "Lower the learning rate, or raise divergence.max_skipped_fraction to accept it."
        )

    def _write_diagnostic(self, info: dict[str, Any], batch: Any = None) -> Path:
        diag = {"step": int(self.global_step), "epoch": int(self.current_epoch), **info}
        if isinstance(batch, dict):
            diag["batch"] = {
                k: {"mean": float(v.float().mean()), "std": float(v.float().std()), "min": float(v.min()),
                    "max": float(v.max()), "finite": bool(torch.isfinite(v.float()).all())}
                for k, v in batch.items() if torch.is_tensor(v) and v.is_floating_point()
            }
        path = self._diagnostic_path()
        path.write_text(json.dumps(_finite_or_none(diag), indent=2))
        return path

    def _diagnostic_path(self) -> Path:
        # default_root_dir, not log_dir: asking for log_dir is a collective call under DDP
        root = Path(self.trainer.default_root_dir) if self._trainer else Path(".")
        root.mkdir(parents=True, exist_ok=True)
        rank = f"_rank{self.global_rank}" if self._trainer is not None and self.trainer.world_size > 1 else ""
        return root / f"nonfinite_step{int(self.global_step)}{rank}.json"

    # -- sampling ----------------------------------------------------------------------
    def sample_images(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` images (N, 3, H, W) in [-1, 1] for grids and metrics."""
        raise NotImplementedError

    def metric_inputs(self) -> dict[str, Any]:
        """What this model offers :func:`genface.metrics.compute_metrics` (used by genface-compare).

        Keys: ``generator_fn(n, seed)`` (images in [-1, 1]); ``recon_fn(x)`` for autoencoders;
        ``model`` (with ``mapping``/``synthesis``) for the StyleGAN family's PPL. Subclasses add theirs.
        """
        return {"generator_fn": lambda n, seed: self.sample_images(n, seed=seed)}

    def evaluate_extra(self, datamodule: Any) -> dict[str, float]:
        """Model-specific evaluation for genface-compare (e.g. FaceSwap's swap error); none here."""
        return {}

    def export_pretrained(self, directory: str | Path) -> Path:
        """Save the network (with EMA weights where a callback keeps them) as config + safetensors."""
        return self.net.save_pretrained(directory)
