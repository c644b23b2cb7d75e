"""Training of :class:`~genface.models.cyclegan.CycleGAN` (Zhu et al. 2017, arXiv 1703.10593).

The paper's objective (eq. 3 with the LSGAN form of §4 and the identity term of §5.2)::

    L(G, F, D_X, D_Y) = L_GAN(G, D_Y, X, Y) + L_GAN(F, D_X, Y, X) + lambda L_cyc(G, F)
                        + lambda_id * lambda * L_identity(G, F)
    L_cyc      = E_x ||F(G(x)) - x||_1 + E_y ||G(F(y)) - y||_1          (lambda = 10)
    L_identity = E_y ||G(y) - y||_1   + E_x ||F(x) - x||_1              (lambda_id = 0.5)

with least-squares adversarial losses (G minimises E (D(G(x)) - 1)^2; D minimises
0.5 [E (D(y) - 1)^2 + E D(G(x))^2]), discriminators updated from a history of 50 generated
images (Shrivastava et al. 2017; :class:`ImagePool`), Adam lr 2e-4 with beta1 0.5, constant
then linearly decayed to 0 (the paper: 100 epochs + 100 epochs; here a fraction of the
steps, ``decay_start``). Manual optimisation as :class:`genface.training.gan.GANModule`: one G
step then one D step per batch; ``global_step`` counts batches. Exact resume: the iteration
counter and both image pools travel in the checkpoint, the RNG with
:class:`~genface.training.base.GenerativeModule`.

Batches are A/B pairs from :class:`genface.data.swap.SwapDataModule` (``data=synthetic_swap``
or ``data=swap_pair``): the two sides are unpaired faces, as CycleGAN needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from genface.models.cyclegan import CycleGAN
from genface.training.base import GenerativeModule
from genface.training.gan import _uncounted
from genface.training.losses import get_gan_loss
from genface.training.swapper import SwapEvaluation

__all__ = ["ImagePool", "CycleGANModule", "linear_decay"]


class ImagePool:
    """History of generated images for the discriminator (Shrivastava et al. 2017, §2.3;
    CycleGAN §4: a buffer of the 50 last generated images).

    Until the buffer is full every image is stored and returned; then each image of a query
    is, with probability 1/2, returned as is, or swapped with a random stored image (which
    is returned). Draws use torch's global RNG, which genface checkpoints restore.

    Args:
        size: images kept (CycleGAN: 50); 0 = no buffer (queries come back unchanged).
    """

    def __init__(self, size: int = 50):
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[torch.Tensor] = []

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> N images for the discriminator (detached)."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for img in images:
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif float(torch.rand(())) < 0.5:
                k = int(torch.randint(len(self.images), ()))
                out.append(self.images[k].to(img.device).clone())
                self.images[k] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size,
                "images": torch.stack([i.cpu() for i in self.images]) if self.images else torch.empty(0)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.size = int(state["size"])
        self.images = [i.clone() for i in state["images"]] if state["images"].numel() else []


def linear_decay(step: int, total: int, decay_start: float) -> float:
    """LR factor: 1 until ``decay_start * total`` steps, then linear towards 0 at ``total``
    (the reference's ``1 - max(0, epoch - n_epochs) / (n_epochs_decay + 1)``, in steps)."""
    start = int(decay_start * total)
    if total <= 0 or step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / float(total - start + 1))


class CycleGANModule(SwapEvaluation, GenerativeModule):
    """Trains a :class:`CycleGAN` on unpaired A/B batches (keys ``image_a``, ``image_b`` in [-1, 1]).

    Args:
        net: the CycleGAN (G = ``g_ab``, F = ``g_ba``, D_X = ``d_a``, D_Y = ``d_b``).
        loss: adversarial loss by name (:mod:`genface.training.losses`; CycleGAN: "lsgan").
        lambda_cyc: cycle-consistency weight lambda (paper: 10).
        lambda_id: identity-loss weight as a fraction of ``lambda_cyc`` (paper: 0.5, so
            5 x L1); 0 = off.
        g_adv_weight: weight of the generators' adversarial terms. genface's "lsgan" G loss
            is Mao et al.'s 0.5 (D(G(x)) - 1)^2; 2.0 makes it the reference's unhalved
            (D(G(x)) - 1)^2 beside lambda = 10.
        lr: Adam learning rate of generators and discriminators (paper: 2e-4).
        betas: Adam betas (paper: (0.5, 0.999)).
        pool_size: generated images kept for the discriminators (paper: 50); 0 = none.
        decay_start: fraction of the run (``trainer.max_steps``) after which the learning
            rate decays linearly to 0 (paper: 0.5, 100 of 200 epochs); 1 = constant.
        preview_samples: A faces kept for :meth:`sample_images`.
        swap_eval_samples: held-out faces (synthetic poses) on which the swap metrics of
            :mod:`genface.metrics.swap` run at each validation (``val/<metric>``); 0 = off.
        nan_policy: see :class:`~genface.training.base.GenerativeModule`.
    """

    def __init__(self, net: CycleGAN, loss: str = "lsgan", lambda_cyc: float = 10.0, lambda_id: float = 0.5,
                 g_adv_weight: float = 2.0, lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999),
                 pool_size: int = 50, decay_start: float = 0.5, preview_samples: int = 8,
                 swap_eval_samples: int = 64, nan_policy: str = "stop"):
        super().__init__(nan_policy=nan_policy)
        if not 0 <= decay_start <= 1:
            raise ValueError(f"decay_start must be in [0, 1], got {decay_start}")
        self.automatic_optimization = False
        self.save_hyperparameters(ignore=["net"])
        self.net = net
        self.d_loss_fn, self.g_loss_fn = get_gan_loss(loss)
        self.pool_a, self.pool_b = ImagePool(pool_size), ImagePool(pool_size)
        self.iteration = 0  # batches trained on; saved in checkpoints
        self._fixed: torch.Tensor | None = None
        self._held_faces: torch.Tensor | None = None

    # -- optimisation ------------------------------------------------------------------
    def configure_optimizers(self):
        hp, n = self.hparams, self.net
        b = tuple(hp.betas)
        opt_g = torch.optim.Adam([*n.g_ab.parameters(), *n.g_ba.parameters()], lr=hp.lr, betas=b)
        opt_d = torch.optim.Adam([*n.d_a.parameters(), *n.d_b.parameters()], lr=hp.lr, betas=b)
        return [opt_g, opt_d]

    def _total_steps(self) -> int:
        t = self._trainer
        if t is None:
            return 0
        if t.max_steps and t.max_steps > 0:
            return int(t.max_steps)
        est = t.estimated_stepping_batches
        return int(est) if est != float("inf") else 0

    def _set_lr(self, *opts) -> float:
        lr = self.hparams.lr * linear_decay(self.iteration, self._total_steps(), self.hparams.decay_start)
        for opt in opts:
            for group in opt.param_groups:
                group["lr"] = lr
        return lr

    def _d_out(self, d: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return d(x).flatten()  # one LSGAN target per patch

    def training_step(self, batch: Mapping, batch_idx: int) -> None:
        self._check_pairs(batch)
        hp, net = self.hparams, self.net
        opt_g, opt_d = self.optimizers()
        lr = self._set_lr(opt_g, opt_d)
        real_a, real_b = batch["image_a"].float(), batch["image_b"].float()
        if self._held_faces is None:
            self._held_faces = real_a[: hp.preview_samples].detach().clone()

        # -- generators G and F ---------------------------------------------------------
        net.d_a.requires_grad_(False)
        net.d_b.requires_grad_(False)
        fake_b, fake_a = net.g_ab(real_a), net.g_ba(real_b)
        rec_a, rec_b = net.g_ba(fake_b), net.g_ab(fake_a)
        g = {"g_adv_ab": hp.g_adv_weight * self.g_loss_fn(self._d_out(net.d_b, fake_b)),
             "g_adv_ba": hp.g_adv_weight * self.g_loss_fn(self._d_out(net.d_a, fake_a)),
             "cycle": hp.lambda_cyc * (F.l1_loss(rec_a, real_a) + F.l1_loss(rec_b, real_b))}
        if hp.lambda_id:
            g["identity"] = hp.lambda_cyc * hp.lambda_id * (F.l1_loss(net.g_ab(real_b), real_b)
                                                            + F.l1_loss(net.g_ba(real_a), real_a))
        g_loss = sum(g.values())
        opt_g.zero_grad(set_to_none=True)
        if self.guard_finite({"g_loss": g_loss, **g}, batch):
            self.manual_backward(g_loss)
        with _uncounted(opt_g):
            opt_g.step()
        net.d_a.requires_grad_(True)
        net.d_b.requires_grad_(True)

        # -- discriminators D_X (A) and D_Y (B), on the image history --------------------
        hist_b, hist_a = self.pool_b.query(fake_b), self.pool_a.query(fake_a)
        d = {"d_b": self.d_loss_fn(self._d_out(net.d_b, real_b), self._d_out(net.d_b, hist_b)),
             "d_a": self.d_loss_fn(self._d_out(net.d_a, real_a), self._d_out(net.d_a, hist_a))}
        d_loss = d["d_a"] + d["d_b"]
        opt_d.zero_grad(set_to_none=True)
        if self.guard_finite({"d_loss": d_loss, **d}, batch):
            self.manual_backward(d_loss)
        opt_d.step()  # counted: global_step = batches

        self.iteration += 1
        log = {f"train/{k}": v.detach() for k, v in {**g, **d}.items()}
        log.update({"train/g_loss": g_loss.detach(), "train/d_loss": d_loss.detach(), "train/lr": lr})
        self.log_dict(log, on_step=True, on_epoch=False, batch_size=len(real_a) + len(real_b))
        self.log("g_loss", g_loss.detach(), prog_bar=True, logger=False)

    # -- validation ----------------------------------------------------------------------
    def validation_step(self, batch: Mapping, batch_idx: int) -> None:
        self._check_pairs(batch)
        a, b = batch["image_a"].float(), batch["image_b"].float()
        cyc = (F.l1_loss(self.net.g_ba(self.net.g_ab(a)), a) + F.l1_loss(self.net.g_ab(self.net.g_ba(b)), b)) / 2
        self.log("val/cycle_l1", cyc, prog_bar=True, batch_size=len(a) + len(b), sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self.log_swap_validation()  # genface/training/swapper.py
        super().on_validation_epoch_end()  # restores the training RNG

    # -- resume --------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["genface_iteration"] = self.iteration
        checkpoint["genface_image_pools"] = {"a": self.pool_a.state_dict(), "b": self.pool_b.state_dict()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.iteration = checkpoint.get("genface_iteration", 0)
        pools = checkpoint.get("genface_image_pools")
        if pools is not None:
            self.pool_a.load_state_dict(pools["a"])
            self.pool_b.load_state_dict(pools["b"])

    # -- swapping, sampling, evaluation ----------------------------------------------------
    @torch.no_grad()
    def swap_fn(self, x: torch.Tensor, target: int) -> torch.Tensor:
        """The swapper contract: faces (N, 3, H, W) in [-1, 1] into identity ``target``
        (1 = B with G, 0 = A with F), in [-1, 1], with the networks in eval mode."""
        was = self.net.training
        self.net.eval()
        try:
            return self.net.translate(x.to(self.device).float(), int(target)).clamp(-1, 1)
        finally:
            self.net.train(was)

    def _fixed_faces(self) -> torch.Tensor | None:
        """The first ``preview_samples`` validation (else training) A faces: the same faces throughout a run."""
        if self._fixed is not None:
            return self._fixed
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        ds = getattr(dm, "val_set", None) or getattr(dm, "train_set", None)
        if ds is None or len(ds) == 0:
            return None
        self._fixed = torch.stack([ds[i]["image_a"] for i in range(min(self.hparams.preview_samples, len(ds)))])
        return self._fixed

    @torch.no_grad()
    def sample_images(self, n: int, seed: int = 0) -> torch.Tensor:
        """A->B translations (N, 3, H, W) in [-1, 1] of fixed A faces, cycled to ``n``; ``seed`` is unused."""
        faces = self._fixed_faces()
        faces = faces if faces is not None else self._held_faces
        if faces is None:
            raise RuntimeError("CycleGANModule.sample_images needs a datamodule or a training step")
        x = faces.repeat((n + len(faces) - 1) // len(faces), 1, 1, 1)[:n]
        return self.swap_fn(x, 1)

    def metric_inputs(self) -> dict[str, Any]:
        """``swap_fn(x, target)`` (the ``"swapper"`` need of :mod:`genface.metrics`); no
        ``generator_fn`` (CycleGAN does not sample from noise) and no ``recon_fn``."""
        out: dict[str, Any] = {"swap_fn": self.swap_fn}
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        data = self._swap_data(dm)  # the held-out faces of the swap metrics
        if data is not None:
            out["swap_data"] = data
        return out
