"""Behaviour shared by every genface LightningModule: exact resume, NaN guards, sampling."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from genface.errors import NonFiniteLossError, TooManySkippedStepsError


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


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["key"], n["pos"].numpy().astype(np.uint32), *n["rest"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(x) for x in p["internal"].tolist()), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class GenerativeModule(L.LightningModule):
    """Base of the genface LightningModules.

    * Saves the RNG states (torch, CUDA, NumPy, Python) in every checkpoint and restores them
      when training resumes, so that a resumed CPU run continues exactly.
    * :meth:`guard_finite` stops (or skips the step) on a NaN/Inf loss and writes a
      diagnostic JSON next to the logs; checkpoints already written are untouched.
    * Subclasses implement :meth:`sample_images` (used by the sample-grid callback and the
      comparison) and keep their network as ``self.net``.

    Args:
        nan_policy: ``"stop"`` raises :class:`NonFiniteLossError`; ``"skip"`` drops the step
            and counts it in ``train/skipped_steps``.
    """

    def __init__(self, nan_policy: str = "stop"):
        super().__init__()
        if nan_policy not in ("stop", "skip"):
            raise ValueError(f"nan_policy must be 'stop' or 'skip', got {nan_policy!r}")
        self.nan_policy = nan_policy
        self.skipped_steps = 0
        self._rng_to_restore: dict[str, Any] | None = None

    # -- exact resume ------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["genface_rng"] = _rng_state()
        checkpoint["genface_skipped_steps"] = self.skipped_steps

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_to_restore = checkpoint.get("genface_rng")
        self.skipped_steps = checkpoint.get("genface_skipped_steps", 0)

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
        """True when every loss is finite. Otherwise write a diagnostic and stop or skip."""
        bad = {k: float(v.detach()) for k, v in losses.items() if not torch.isfinite(v.detach()).all()}
        if self._trainer is not None and self.trainer.world_size > 1:
            # every rank takes the same decision, so that no rank steps (or waits) alone
            if not self.trainer.strategy.reduce_boolean_decision(bool(bad), all=False):
                return True
        elif not bad:
            return True
        diag = {
            "step": int(self.global_step),
            "epoch": int(self.current_epoch),
            "losses": {k: float(v.detach()) for k, v in losses.items()},
            "non_finite": sorted(bad),
        }
        if isinstance(batch, dict):
            diag["batch"] = {
                k: {"mean": float(v.float().mean()), "std": float(v.float().std()), "min": float(v.min()),
                    "max": float(v.max()), "finite": bool(torch.isfinite(v.float()).all())}
                for k, v in batch.items() if torch.is_tensor(v) and v.is_floating_point()
            }
        path = self._diagnostic_path()
        path.write_text(json.dumps(diag, indent=2, default=lambda x: None if not math.isfinite(x) else x))
        if self.nan_policy == "skip":
            self.skipped_steps += 1
            self.log("train/skipped_steps", float(self.skipped_steps))
            return False
        raise NonFiniteLossError(
            f"non-finite loss {bad} at step {self.global_step}; diagnostic written to {path}. "
            "The last checkpoint written before this step is intact: lower the learning rate, "
            "or set model.nan_policy=skip to drop such steps."
        )

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
