"""Training of :class:`~genface.models.faceswap.FaceSwap`: losses and the LightningModule.

The recipe is deepfakes/faceswap's: one Adam optimiser (lr 5e-5, eps 1e-7) over the shared
encoder and every decoder; each step reconstructs a batch of A faces with decoder A and a
batch of B faces with decoder B from randomly *warped* inputs (colour and affine
augmentation on input and target alike, the warp on the input only, see
:mod:`genface.training.augment`). Losses: MAE (the thesis' choice, default), MSE, SSIM and
MS-SSIM in any weighted sum; eye and mouth regions weigh x3 and x2 when landmarks or region
weight maps come with the batch. A non-finite loss stops training before the optimiser
step (faceswap's NaN protection), so the last saved checkpoint stays good.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from kornia.losses import MS_SSIMLoss, SSIMLoss
from torch import nn

from genface.models.faceswap import FaceSwap
from genface.training.augment import AugmentConfig, FaceSwapAugment
from genface.training.base import GenerativeModule, NonFiniteLossError
from genface.training.swapper import SwapEvaluation

log = logging.getLogger(__name__)

__all__ = ["FaceSwapLoss", "FaceSwapModule", "LOSSES", "NonFiniteLossError", "keep_grey"]

#: Reconstruction losses accepted by :class:`FaceSwapLoss`, each as a per-pixel map.
LOSSES = ("mae", "mse", "ssim", "ms_ssim")


class FaceSwapLoss(nn.Module):
    """Weighted sum of reconstruction losses, optionally weighted per pixel.

    Args:
        weights: loss name -> weight, names from :data:`LOSSES`: "mae" (L1), "mse" (L2),
            "ssim" ((1 - SSIM) / 2, kornia, 11x11 window), "ms_ssim" (kornia's
            ``MS_SSIMLoss``: the MS-SSIM + Gaussian-L1 mix of Zhao et al. 2017, usable at
            64 px). A weight of 0 disables a term.
        ssim_window: SSIM window size.
    """

    def __init__(self, weights: Mapping[str, float] | None = None, ssim_window: int = 11):
        super().__init__()
        weights = dict(weights if weights is not None else {"mae": 1.0})
        unknown = sorted(set(weights) - set(LOSSES))
        if unknown:
            raise KeyError(f"unknown FaceSwap loss(es) {unknown}; valid: {list(LOSSES)}")
        self.weights = {k: float(v) for k, v in weights.items() if v}
        if not self.weights:
            raise ValueError("at least one loss needs a non-zero weight")
        self.ssim = SSIMLoss(ssim_window, reduction="none") if "ssim" in self.weights else None
        self.ms_ssim = MS_SSIMLoss(reduction="none") if "ms_ssim" in self.weights else None

    def _map(self, name: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if name == "mae":
            return (pred - target).abs().mean(1)
        if name == "mse":
            return (pred - target).pow(2).mean(1)
        if name == "ssim":
            return self.ssim(pred, target).mean(1)
        m = self.ms_ssim(pred, target)
        return m if m.ndim == 3 else m.mean(1)

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                pixel_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss of ``pred`` against ``target`` (B, C, H, W) in [0, 1].

        Args:
            pred: reconstructions.
            target: targets.
            pixel_weights: (B, 1, H, W) or (B, H, W) weights (e.g. from
                :func:`genface.faces.masks.region_weights`); None = uniform.

        Returns:
            ``(total, {name: term})`` with terms before weighting.
        """
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
        w = None
        if pixel_weights is not None:
            w = pixel_weights.reshape(pred.shape[0], *pred.shape[-2:]).to(pred.dtype)
        parts = {}
        total = pred.new_zeros(())
        for name, weight in self.weights.items():
            m = self._map(name, pred, target)
            term = m.mean() if w is None else (m * w).sum() / w.sum().clamp_min(1e-8)
            parts[name] = term
            total = total + weight * term
        return total, parts


def _region_weights_from_landmarks(landmarks: torch.Tensor, size: int, eye: float,
                                   mouth: float) -> torch.Tensor:
    from genface.faces.masks import region_weights

    lm = landmarks.detach().float().cpu().numpy()
    maps = np.stack([region_weights(p, size, eye, mouth) for p in lm])
    return torch.from_numpy(maps)[:, None].to(landmarks.device)


def _hull_from_landmarks(landmarks: torch.Tensor, size: int) -> torch.Tensor:
    from genface.faces.masks import hull_mask

    lm = landmarks.detach().float().cpu().numpy()
    return torch.from_numpy(np.stack([hull_mask(p, size) for p in lm]))[:, None].to(landmarks.device)


def keep_grey(source: torch.Tensor, out: torch.Tensor, tol: float = 1 / 255) -> torch.Tensor:
    """``out`` with the faces whose ``source`` is greyscale (equal channels) made greyscale
    (channel mean): a grey input stays grey in training targets, swaps and previews.

    Args:
        source: (B, 3, H, W) inputs.
        out: (B, 3, H, W) images derived from them (same range).
        tol: largest channel difference that still counts as grey.
    """
    grey = (source.amax(1) - source.amin(1)).flatten(1).amax(1) <= tol
    if not grey.any():
        return out
    g = out.mean(1, keepdim=True).expand_as(out)
    return torch.where(grey[:, None, None, None], g, out)


class FaceSwapModule(SwapEvaluation, GenerativeModule):
    """Trains a :class:`FaceSwap` on A/B batches (from :class:`genface.data.swap.SwapDataModule`).

    Batches are dicts with ``image_a``, ``image_b``: float (B, 3, H, W) in [-1, 1] (the
    genface sample contract; converted to [0, 1] here), and optionally ``landmarks_a/_b``
    ((B, 68, 2) crop pixels: eye/mouth weighting and, with ``learn_mask``, the mask target),
    ``region_weights_a/_b`` ((B, 1, H, W) per-pixel loss weights) and ``mask_a/_b``
    ((B, 1, H, W) mask targets in [0, 1]).

    Args:
        net: the FaceSwap network (it needs at least ``max(identities) + 1`` decoders).
        lr: Adam learning rate (faceswap: 5e-5).
        lr_decay_steps: cosine decay of the learning rate from ``lr`` to ``lr * lr_final``
            over this many optimiser steps, then constant (a step budget: set it to the run's
            ``trainer.max_steps``); None or 0 = constant ``lr`` (faceswap).
        lr_final: the learning rate at the end of the decay, as a fraction of ``lr``.
        betas: Adam betas.
        eps: Adam epsilon (faceswap: 1e-7).
        losses: loss name -> weight, see :class:`FaceSwapLoss` (default MAE).
        warp: random warp of the inputs; False = train on unwarped (still augmented) faces.
        augment: :class:`~genface.training.augment.AugmentConfig` fields (dict) or config;
            None = faceswap's defaults; False = no augmentation at all (no colour, affine or
            warp; for tests and debugging).
        eye_weight: loss weight of the eye regions when landmarks are given (1 = off).
        mouth_weight: loss weight of the mouth region when landmarks are given (1 = off).
        mask_loss_weight: weight of the learned-mask MSE (used when the net has a mask head
            and the batch a mask target).
        identities: decoder indices of A and B.
        preview_every_n_steps: save/log a :meth:`preview_grid` every this many steps
            (PNG marked synthetic under ``<log_dir>/previews`` and the logger's image hook);
            0 or None = never.
        preview_samples: faces per row of the preview.
        swap_eval_samples: at the end of every validation the swap metrics of
            :mod:`genface.metrics.swap` that apply are run on the datamodule's held-out faces
            (:meth:`~genface.data.swap.SwapDataModule.swap_eval_data`; this many synthetic
            poses) and logged as ``val/<metric>`` (e.g. ``val/swap_id_dlib``,
            ``val/swap_pose_dlib``, ``val/swap_synth_gt``); 0 = off.
        nan_policy: on a NaN/Inf loss, "stop" raises
            :class:`~genface.training.base.NonFiniteLossError` before any optimiser step
            (the last checkpoint stays good) and writes a diagnostic JSON; "skip" drops the
            step. See :class:`~genface.training.base.GenerativeModule`.
    """

    def __init__(
        self,
        net: FaceSwap,
        lr: float = 5e-5,
        lr_decay_steps: int | None = None,
        lr_final: float = 0.1,
        betas: tuple[float, float] = (0.5, 0.999),
        eps: float = 1e-7,
        losses: Mapping[str, float] | None = None,
        warp: bool = True,
        augment: AugmentConfig | Mapping | bool | None = None,
        eye_weight: float = 3.0,
        mouth_weight: float = 2.0,
        mask_loss_weight: float = 1.0,
        identities: tuple[int, int] = (0, 1),
        preview_every_n_steps: int | None = 1000,
        preview_samples: int = 8,
        swap_eval_samples: int = 64,
        nan_policy: str = "stop",
    ):
        super().__init__(nan_policy=nan_policy)
        self.save_hyperparameters(ignore=["net"])
        self.net = net
        if max(identities) >= net.config.num_identities:
            raise ValueError(f"identities {identities} need {max(identities) + 1} decoders; the "
                             f"net has {net.config.num_identities}")
        self.criterion = FaceSwapLoss(losses)
        if augment is False:
            self.augment = None
        else:
            cfg = dict(augment) if isinstance(augment, Mapping) else augment
            self.augment = FaceSwapAugment(cfg if cfg is not True else None)
            if not warp:
                self.augment.config.warp = False
        self.identities = tuple(int(i) for i in identities)
        self.last_preview: torch.Tensor | None = None
        self._held_faces: torch.Tensor | None = None  # A faces kept for sample_images
        self._fixed: Mapping | None = None  # fixed preview faces from the datamodule

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def _to01(x: torch.Tensor, key: str) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"batch[{key!r}] must be (B, 3, H, W) in [-1, 1], got {tuple(x.shape)}")
        return (x.float() + 1) / 2

    def _prepare(self, batch: Mapping, side: str):
        """(input, target, pixel_weights, mask_target) for side 'a' or 'b'."""
        x = self._to01(batch[f"image_{side}"], f"image_{side}")
        size = x.shape[-1]
        hp = self.hparams
        weights = batch.get(f"region_weights_{side}")
        mask_t = batch.get(f"mask_{side}")
        lm = batch.get(f"landmarks_{side}")
        if lm is not None:
            if weights is None and (hp.eye_weight != 1 or hp.mouth_weight != 1):
                weights = _region_weights_from_landmarks(lm, size, hp.eye_weight, hp.mouth_weight)
            if mask_t is None and self.net.has_mask:
                mask_t = _hull_from_landmarks(lm, size)
        extras = [t.float() for t in (weights, mask_t) if t is not None]
        if self.augment is not None:
            inp, target, extras = self.augment(x, *extras)
            extras = list(extras)
            # colour augmentation (a*/b* shifts) would tint greyscale faces: keep them grey
            inp, target = keep_grey(x, inp), keep_grey(x, target)
        else:
            inp, target = x, x
        weights = extras.pop(0) if weights is not None else None
        mask_t = extras.pop(0) if mask_t is not None else None
        return inp, target, weights, mask_t

    def _side_loss(self, pred, mask_pred, target, weights, mask_t):
        loss, parts = self.criterion(pred, target, weights)
        if mask_pred is not None and mask_t is not None and self.hparams.mask_loss_weight:
            mloss = (mask_pred - mask_t).pow(2).mean()
            parts["mask"] = mloss
            loss = loss + self.hparams.mask_loss_weight * mloss
        return loss, parts

    # -- Lightning hooks ---------------------------------------------------------------------
    def forward(self, x: torch.Tensor, identity: int) -> torch.Tensor:
        return self.net(x, identity)

    def training_step(self, batch: Mapping, batch_idx: int) -> torch.Tensor:
        self._check_pairs(batch)
        in_a, tgt_a, w_a, m_a = self._prepare(batch, "a")
        in_b, tgt_b, w_b, m_b = self._prepare(batch, "b")
        # One encoder pass over A and B together (no batch statistics, so it is the same).
        z = self.net.encode(torch.cat([in_a, in_b]))
        ia, ib = self.identities
        pred_a, mask_a = self.net.decode(z[: len(in_a)], ia, return_mask=True)
        pred_b, mask_b = self.net.decode(z[len(in_a):], ib, return_mask=True)
        loss_a, parts_a = self._side_loss(pred_a, mask_a, tgt_a, w_a, m_a)
        loss_b, parts_b = self._side_loss(pred_b, mask_b, tgt_b, w_b, m_b)
        loss = loss_a + loss_b
        # NaN protection: raises (or skips) before backward and the optimiser step.
        if not self.guard_finite({"loss": loss, "loss_a": loss_a, "loss_b": loss_b}, batch):
            return None
        if self._held_faces is None:
            self._held_faces = batch["image_a"][: self.hparams.preview_samples].detach().clone()
        bs = len(in_a) + len(in_b)
        self.log("train/loss_a", loss_a, batch_size=bs)
        self.log("train/loss_b", loss_b, batch_size=bs)
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        for k, v in parts_a.items():
            if len(parts_a) > 1:
                self.log(f"train/{k}_a", v, batch_size=bs)
        for k, v in parts_b.items():
            if len(parts_b) > 1:
                self.log(f"train/{k}_b", v, batch_size=bs)
        return loss

    def validation_step(self, batch: Mapping, batch_idx: int) -> dict[str, torch.Tensor]:
        self._check_pairs(batch)
        xa, xb = self._to01(batch["image_a"], "image_a"), self._to01(batch["image_b"], "image_b")
        ia, ib = self.identities
        mae_a = (self.net(xa, ia) - xa).abs().mean()
        mae_b = (self.net(xb, ib) - xb).abs().mean()
        bs = len(xa) + len(xb)
        self.log("val/mae_a", mae_a, batch_size=bs, sync_dist=True)
        self.log("val/mae_b", mae_b, batch_size=bs, sync_dist=True)
        self.log("val/mae", (mae_a + mae_b) / 2, prog_bar=True, batch_size=bs, sync_dist=True)
        return {"mae_a": mae_a, "mae_b": mae_b}

    def on_validation_epoch_end(self) -> None:
        self.log_swap_validation()  # genface/training/swapper.py
        super().on_validation_epoch_end()  # restores the training RNG

    def configure_optimizers(self):
        hp = self.hparams
        opt = torch.optim.Adam(self.net.parameters(), lr=hp.lr, betas=tuple(hp.betas), eps=hp.eps)
        if not hp.lr_decay_steps:
            return opt
        import math

        n, floor = int(hp.lr_decay_steps), float(hp.lr_final)

        def factor(step: int) -> float:  # cosine from 1 to lr_final over n steps, then lr_final
            t = min(step, n) / n
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    @torch.no_grad()
    def preview_grid(self, batch: Mapping, n: int | None = None) -> torch.Tensor:
        """faceswap's preview: rows A, A->A, A->B, B, B->B, B->A (unaugmented faces).

        Args:
            batch: an A/B batch (images in [-1, 1]).
            n: faces per row; None = ``preview_samples`` (capped by the batch).

        Returns:
            an image grid (3, 6*H + pad, n*W + pad) in [0, 1].
        """
        from genface.utils import make_grid

        n = n or self.hparams.preview_samples
        xa = self._to01(batch["image_a"], "image_a")
        xb = self._to01(batch["image_b"], "image_b")
        n = min(n, len(xa), len(xb))
        xa, xb = xa[:n], xb[:n]
        ia, ib = self.identities
        was_training = self.net.training
        self.net.eval()
        za, zb = self.net.encode(xa), self.net.encode(xb)
        rows = [xa, keep_grey(xa, self.net.decode(za, ia)), keep_grey(xa, self.net.decode(za, ib)),
                xb, keep_grey(xb, self.net.decode(zb, ib)), keep_grey(xb, self.net.decode(zb, ia))]
        self.net.train(was_training)
        return make_grid(torch.cat(rows).float().cpu(), nrow=n, padding=2, pad_value=1.0)

    def _fixed_faces(self) -> Mapping | None:
        """``preview_samples`` fixed pairs of the datamodule: its validation pairs first, topped
        up with training pairs when the validation set is smaller (so a preview always has
        ``preview_samples`` columns), the same at every call: previews and samples show the
        same faces throughout a run (and after a resume). None without a datamodule."""
        if self._fixed is not None:
            return self._fixed
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        want = self.hparams.preview_samples
        items = []
        for ds in (getattr(dm, "val_set", None), getattr(dm, "train_set", None)):
            if ds is not None:
                items += [ds[i] for i in range(min(want - len(items), len(ds)))]
        if not items:
            return None
        from torch.utils.data import default_collate

        self._fixed = {k: v for k, v in default_collate(items).items() if k in ("image_a", "image_b")}
        return self._fixed

    @torch.no_grad()
    def sample_images(self, n: int, seed: int = 0) -> torch.Tensor:
        """A->B swaps (N, 3, H, W) in [-1, 1] of fixed A faces (the datamodule's first
        validation pairs, else the first A faces seen in training), cycled to ``n``; ``seed``
        is unused (swaps are deterministic)."""
        fixed = self._fixed_faces()
        faces = fixed["image_a"] if fixed is not None else self._held_faces
        if faces is None:
            raise RuntimeError("FaceSwapModule.sample_images needs a datamodule or a training step "
                               "(it swaps faces of A)")
        x = self._to01(faces, "image_a")
        x = x.repeat((n + len(x) - 1) // len(x), 1, 1, 1)[:n].to(self.device)
        was_training = self.net.training
        self.net.eval()
        out = keep_grey(x, self.net.swap(x, to=self.identities[1])) * 2 - 1
        self.net.train(was_training)
        return out

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        every = self.hparams.preview_every_n_steps
        if not every or self.global_step % every:
            return
        grid = self.preview_grid(self._fixed_faces() or batch)
        self.last_preview = grid
        trainer = self.trainer
        root = trainer.log_dir or trainer.default_root_dir
        if root and trainer.is_global_zero:
            from genface.provenance import save_png

            save_png(grid, Path(root) / "previews" / f"step_{self.global_step:07d}.png",
                     extra={"genface_task": "faceswap preview", "rows": "A, A->A, A->B, B, B->B, B->A"},
                     model=self, action="swapped")
        for logger in self.loggers:
            if hasattr(logger, "log_image"):  # WandbLogger
                logger.log_image(key="preview", images=[grid], step=self.global_step)
            elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoard
                logger.experiment.add_image("preview", grid, self.global_step)

    # -- evaluation ----------------------------------------------------------------------
    def swap_fn(self, x: torch.Tensor, target: int) -> torch.Tensor:
        """The swapper contract of :mod:`genface.metrics.swap`: faces ``x`` (N, 3, H, W) in
        [-1, 1] swapped into identity ``target`` (0 = A, 1 = B: decoders ``identities``),
        same shape and range; greyscale faces give greyscale swaps."""
        if target not in (0, 1):
            raise ValueError(f"target must be 0 (A) or 1 (B), got {target}")
        was_training = self.net.training
        self.net.eval()
        x01 = self._to01(x, "x").to(self.device)
        with torch.no_grad():
            y = keep_grey(x01, self.net.swap(x01, to=self.identities[target]))
        self.net.train(was_training)
        return y * 2 - 1

    def metric_inputs(self) -> dict:
        """What this model offers :func:`genface.metrics.compute_metrics`:

        * ``recon_fn``: faces of A (in [-1, 1]) reconstructed with decoder A (the reference
          of genface-compare is the datamodule's A faces);
        * ``swap_fn``: :meth:`swap_fn` (the ``"swapper"`` need);
        * ``swap_data``: the datamodule's held-out faces
          (:meth:`~genface.data.swap.SwapDataModule.swap_eval_data`), when it has them.

        No ``generator_fn``: FaceSwap does not sample from noise, so sample-quality metrics
        (FSD, MS-SSIM diversity) do not apply."""
        ia = self.identities[0]

        @torch.no_grad()
        def recon_fn(x: torch.Tensor) -> torch.Tensor:
            return self.net(self._to01(x, "x").to(self.device), ia) * 2 - 1

        out = {"recon_fn": recon_fn, "swap_fn": self.swap_fn}
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        data = self._swap_data(dm)
        if data is not None:
            out["swap_data"] = data
        return out
