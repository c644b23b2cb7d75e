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
#: Default of ``divergence.check_every``: check the losses and the network every batch.
DEFAULT_CHECK_EVERY = 1


@dataclasses.dataclass
class _PendingCheck:
    """A :meth:`GenerativeModule.guard_finite` call whose verdict stays on the device until the
    next check (``divergence.check_every``): what the per-step check would have reported."""

    step: int  # global_step at the call
    epoch: int
    losses: dict[str, torch.Tensor]  # detached
    flags: torch.Tensor  # (len(losses),) bool: True = non-finite or beyond loss_limit
    batch_stats: dict[str, torch.Tensor] | None  # per float tensor of the batch: mean, std, min, max, finite


def _batch_stats(batch: Any) -> dict[str, torch.Tensor] | None:
    """Per floating-point tensor of a dict batch, ``[mean, std, min, max, all finite]`` as one
    device tensor (no sync); the diagnostic's ``batch`` section is made from it. None: no dict batch."""
    if not isinstance(batch, dict):
        return None
    out = {}
    for k, v in batch.items():
        if torch.is_tensor(v) and v.is_floating_point():
            f = v.detach().float()
            out[k] = torch.stack([f.mean(), f.std(), v.detach().min().float(), v.detach().max().float(),
                                  torch.isfinite(f).all().float()])
    return out


def _batch_diagnostic(stats: dict[str, torch.Tensor]) -> dict[str, dict[str, Any]]:
    out = {}
    for k, t in stats.items():
        mean, std, lo, hi, finite = t.tolist()
        out[k] = {"mean": mean, "std": std, "min": lo, "max": hi, "finite": bool(finite)}
    return out


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
    * With ``divergence.check_every = N > 1`` (``nan_policy=stop`` only) both checks run every
      ``N`` batches instead, one host-device sync each (see
      :meth:`GenerativeModule.configure_divergence`).
    * It counts batches and skipped batches; a run that skipped more than
      ``max_skipped_fraction`` of its batches fails with
      :class:`~genface.errors.TooManySkippedStepsError` and a summary, as soon as that is
      certain (``trainer.max_steps`` known) or at the end of training.
    """

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        pl_module._skipped_in_batch = False
        pl_module._batch_stats_cache = None
        if pl_module.nan_policy == "skip":
            pl_module._buffers_at_batch_start = pl_module._snapshot_buffers()
            pl_module._buffers_at_segment_start = pl_module._buffers_at_batch_start

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        m = pl_module
        bad_buffers: list[str] = []
        if not m._defers_checks() or (m.trained_batches + 1) % m.check_every == 0:
            m.check_pending_losses()  # deferred loss checks first: a NaN loss names its own step
            bad_buffers = m._check_network(trainer)
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
        if m._defers_checks():  # the steps since the last check
            m.check_pending_losses()
            m._check_network(trainer)
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
        self._pending_checks: list[_PendingCheck] = []  # deferred loss checks (divergence.check_every)
        self._batch_stats_cache: tuple[Any, dict[str, torch.Tensor] | None] | None = None  # (batch, stats)
        self.configure_divergence()

    def configure_divergence(self, loss_limit: float | None = DEFAULT_LOSS_LIMIT,
                             max_skipped_fraction: float = DEFAULT_MAX_SKIPPED_FRACTION,
                             check_every: int = DEFAULT_CHECK_EVERY) -> None:
        """Set the divergence limits.

        Args:
            loss_limit: a loss whose absolute value exceeds this counts as diverged, like a NaN
                (an explosion: with ``lr=1e10`` DCGAN's losses reach 1e21 while staying finite);
                ``None`` = only NaN/Inf count.
            max_skipped_fraction: with ``nan_policy=skip``, a run that skipped more than this
                share of its batches fails with a summary (0 = any skip fails; 1 = never fails).
            check_every: with ``nan_policy=stop``, check the losses, parameters and buffers every
                this many batches instead of every batch: :meth:`guard_finite` keeps its verdict on
                the device and the check costs one host-device sync per ``check_every`` batches
                instead of one per loss and one for the network every batch. A NaN still raises
                the same error with the same diagnostic, naming the step of the first bad loss,
                at most ``check_every - 1`` batches late (those batches train on, so the
                weights are NaN by then); the pending checks also run before every checkpoint
                is saved, before validation and at the end of training, so no checkpoint holds a
                diverged network. 1 = every batch (the default). ``nan_policy=skip`` must decide
                before the optimiser step and always checks every step (one sync per loss group).
        """
        if loss_limit is not None and not loss_limit > 0:
            raise ValueError(f"divergence.loss_limit must be > 0 or null, got {loss_limit!r}")
        if not 0.0 <= max_skipped_fraction <= 1.0:
            raise ValueError(f"divergence.max_skipped_fraction must be in [0, 1], got {max_skipped_fraction!r}")
        if int(check_every) != check_every or check_every < 1:
            raise ValueError(f"divergence.check_every must be an integer >= 1, got {check_every!r}")
        self.loss_limit = None if loss_limit is None else float(loss_limit)
        self.max_skipped_fraction = float(max_skipped_fraction)
        self.check_every = int(check_every)

    def _defers_checks(self) -> bool:
        """Whether the finiteness checks run every ``check_every`` batches (see :meth:`configure_divergence`)."""
        return self.nan_policy == "stop" and self.check_every > 1 and self._trainer is not None

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
        if self._defers_checks():  # no checkpoint of a network that diverged since the last check
            self.check_pending_losses()
            self._check_network(self.trainer)
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
        if self._defers_checks():
            self.check_pending_losses()
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
        step's forward pass, and the caller must not step.

        One host-device sync per call; none with ``divergence.check_every > 1`` under
        ``nan_policy=stop``: the verdict then stays on the device until the next check
        (:meth:`check_pending_losses`) and this returns True."""
        flags = self._loss_flags(losses)
        if self._defers_checks():
            if self._batch_stats_cache is None or self._batch_stats_cache[0] is not batch:
                self._batch_stats_cache = (batch, _batch_stats(batch))
            self._pending_checks.append(_PendingCheck(
                step=int(self.global_step), epoch=int(self.current_epoch),
                losses={k: v.detach() for k, v in losses.items()}, flags=flags,
                batch_stats=self._batch_stats_cache[1]))
            return True
        anybad = bool(flags.any()) if flags.numel() else False  # the one sync
        if self._trainer is not None and self.trainer.world_size > 1:
            # every rank takes the same decision, so that no rank steps (or waits) alone
            anybad = self.trainer.strategy.reduce_boolean_decision(anybad, all=False)
        if not anybad:
            self._buffers_at_segment_start = self._snapshot_buffers_if_skipping()
            return True
        return self._diverged(losses, flags, _batch_stats(batch), int(self.global_step), int(self.current_epoch))

    def _loss_flags(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(len(losses),)`` bool on the device: True where a loss is non-finite or beyond ``loss_limit``."""
        flags = []
        for v in losses.values():
            v = v.detach()
            if not v.numel():
                flags.append(torch.zeros((), dtype=torch.bool, device=v.device))
                continue
            bad = ~torch.isfinite(v).all()
            if self.loss_limit is not None:
                bad = bad | (v.abs().max() > self.loss_limit)
            flags.append(bad)
        return torch.stack(flags) if flags else torch.zeros(0, dtype=torch.bool)

    def check_pending_losses(self) -> None:
        """Run the loss checks that :meth:`guard_finite` deferred (``divergence.check_every``):
        one host-device sync; on a bad loss, the error and diagnostic of the per-step check,
        for the first bad step. A no-op when nothing is pending."""
        pending, self._pending_checks = self._pending_checks, []
        if not pending:
            return
        anybad = bool(torch.cat([p.flags.reshape(-1) for p in pending]).any())  # the one sync
        if self._trainer is not None and self.trainer.world_size > 1:
            anybad = self.trainer.strategy.reduce_boolean_decision(anybad, all=False)
        if not anybad:
            return
        first = next((p for p in pending if bool(p.flags.any())), pending[-1])  # last: another rank's
        self._diverged(first.losses, first.flags, first.batch_stats, first.step, first.epoch)

    def _diverged(self, losses: dict[str, torch.Tensor], flags: torch.Tensor, batch_stats: dict[str, torch.Tensor] | None,
                  step: int, epoch: int) -> bool:
        """A guarded step went bad: write the diagnostic, then skip (returns False) or raise."""
        bad = {k: (float(v.detach().float().abs().max()) if v.numel() else float("nan"))
               for (k, v), f in zip(losses.items(), flags.tolist()) if f}
        exploded = sorted(k for k, v in bad.items() if math.isfinite(v))
        path = self._write_diagnostic({
            "losses": {k: float(v.detach().float().mean()) for k, v in losses.items()},
            "non_finite": sorted(k for k in bad if k not in exploded),
            "exploded": exploded, "loss_limit": self.loss_limit,
        }, batch_stats=batch_stats, step=step, epoch=epoch)
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
            f"{kind} loss {what} at step {step}; diagnostic written to {path}. "
            "The last checkpoint written before this step is intact: lower the learning rate, "
            "or set model.nan_policy=skip to drop such steps"
            + (", or raise divergence.loss_limit if such losses are expected." if exploded else ".")
        )

    def _check_network(self, trainer) -> list[str]:
        """Raise when a parameter (or, under ``nan_policy=stop``, a buffer) is non-finite; return the
        non-finite buffers (for ``nan_policy=skip`` to put back). One host-device sync."""
        bad_params = non_finite_tensors(dict(self.named_parameters()))
        bad_buffers = non_finite_tensors(dict(self.named_buffers()))
        if trainer is not None and trainer.world_size > 1:
            anybad = trainer.strategy.reduce_boolean_decision(bool(bad_params or bad_buffers), all=False)
            if anybad and not (bad_params or bad_buffers):
                bad_buffers = ["(on another process)"]
        if bad_params or (bad_buffers and self.nan_policy == "stop"):
            what = (f"parameters {_short(bad_params)}" if bad_params else "") + \
                   (" and " if bad_params and bad_buffers else "") + \
                   (f"buffers {_short(bad_buffers)}" if bad_buffers else "")
            path = self._write_diagnostic({"non_finite_parameters": bad_params,
                                           "non_finite_buffers": bad_buffers})
            since = (f" (checked every {self.check_every} steps: between step "
                     f"{max(0, self.global_step - self.check_every)} and step {self.global_step})"
                     if self._defers_checks() else "")
            raise NonFiniteLossError(
                f"the network's {what} became non-finite (NaN/Inf) at step {self.global_step}{since}; diagnostic "
                f"written to {path}. The checkpoints written before this step are intact: lower the "
                "learning rate (and resume from the last checkpoint), or set divergence.loss_limit lower "
                "so that the explosion is caught earlier."
            )
        return bad_buffers

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

    def _write_diagnostic(self, info: dict[str, Any], batch: Any = None, batch_stats: dict[str, torch.Tensor] | None = None,
                          step: int | None = None, epoch: int | None = None) -> Path:
        """Write ``nonfinite_step<step>.json``; ``batch`` (or its precomputed :func:`_batch_stats`)
        is summarised; ``step``/``epoch`` default to the current ones."""
        step = int(self.global_step) if step is None else step
        diag = {"step": step, "epoch": int(self.current_epoch) if epoch is None else epoch, **info}
        stats = _batch_stats(batch) if batch_stats is None else batch_stats
        if stats is not None:
            diag["batch"] = _batch_diagnostic(stats)
        path = self._diagnostic_path(step)
        path.write_text(json.dumps(_finite_or_none(diag), indent=2))
        return path

    def _diagnostic_path(self, step: int | None = None) -> Path:
        # default_root_dir, not log_dir: asking for log_dir is a collective call under DDP
        root = Path(self.trainer.default_root_dir) if self._trainer else Path(".")
        root.mkdir(parents=True, exist_ok=True)
        rank = f"_rank{self.global_rank}" if self._trainer is not None and self.trainer.world_size > 1 else ""
        return root / f"nonfinite_step{int(self.global_step) if step is None else step}{rank}.json"

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
