"""Training modules for StyleGAN (arXiv 1812.04948) and StyleGAN2 (arXiv 1912.04958).

* :class:`StyleGANModule`: progressive growing with ProGAN's schedule (StyleGAN App. C keeps
  it), non-saturating logistic loss with R1 (``gamma = 10``), style-mixing regularisation
  (§3.1, ``objective.style_mixing_prob``), truncation at sampling. The EMA generator ``G_ema``
  is the module's (:class:`~genface.training.gan.GANModule`; buffers such as ``mapping.w_avg``
  are copied). With ``objective: {loss: wgan, gp_weight: 10, drift: 0.001, r1_gamma: 0,
  style_mixing_prob: 0}`` it is ProGAN's training, which is how config A of the Table-1 ablation runs.
* :class:`StyleGAN2Module`: no growing; lazy R1 every ``r1_every`` (16) steps and the
  path-length regulariser every ``pl_every`` (4) steps (StyleGAN2 §3.2, Eq. 4, App. B), each
  scaled by its interval (all in :class:`~genface.training.objective.GANObjective`); Adam's ``lr`` and ``betas`` are corrected for the lazy intervals
  as in App. B (``c = k / (k + 1)``: ``lr · c``, ``beta ** c``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from genface.training.gan import GANModule
from genface.training.objective import GANObjective
from genface.training.progan import ProGANModule

__all__ = ["StyleGANModule", "StyleGAN2Module", "path_length_penalty"]


class StyleGANModule(ProGANModule):
    """StyleGAN training (StyleGAN §2, App. C): a :class:`ProGANModule` with StyleGAN's loss,
    style mixing and sampling options; it takes :class:`ProGANModule`'s arguments, with these
    defaults:

    Args:
        net: a :class:`~genface.models.stylegan.StyleGAN` (any Table 1 config) or a ProGAN.
        fade_images: real images per fade-in phase (``None`` = StyleGAN's 600k).
        stable_images: real images per stabilisation phase (``None`` = StyleGAN's 600k).
        start_stage: first stage trained (0 = 4x4; StyleGAN started at 8x8).
        growing: False = train at the final resolution from the start.
        batch_sizes: ``{resolution: batch size}`` (batches are sliced); ``None`` = the datamodule's.
        objective: a :class:`~genface.training.objective.GANObjective` or a mapping over
            ``default_objective`` (StyleGAN FFHQ: logistic loss, R1 gamma 10, mixing 0.9).
        lr_g: generator learning rate (StyleGAN: 1e-3 up to 128 px).
        lr_d: discriminator learning rate.
        betas: Adam betas (0, 0.99).
        ema_kimg: ``G_ema`` half-life in thousands of images (StyleGAN's ``G_smoothing_kimg``: 10);
            ``None`` = no EMA.
        ema_rampup: ramp-up of the half-life (NVlabs 0.05); ``None`` = none.
        sample_truncation_psi: truncation psi for grids and ``generator_fn`` (1 = none).
        sample_truncation_cutoff: truncate only the first ws rows when sampling; ``None`` = all.
        nan_policy: ``"stop"`` or ``"skip"``.
    """

    default_objective: ClassVar[dict[str, Any]] = {"loss": "non_saturating", "r1_gamma": 10.0,
                                                   "style_mixing_prob": 0.9}

    default_phase_images: ClassVar[int] = 600_000  # StyleGAN App. C: 600k images per phase

    def mixes_styles(self) -> bool:
        return getattr(self.net.generator, "num_ws", 1) > 1

    def generator_forward(self, z: torch.Tensor, training: bool = False) -> torch.Tensor:
        if not self.mixes_styles():  # a ProGAN generator: no ws to mix, no w_avg
            return self.net.generator(z, stage=self.stage, alpha=self.alpha)
        prob = self.objective.style_mixing_prob if training else 0.0
        return self.net.generator(z, stage=self.stage, alpha=self.alpha, mixing_prob=prob, update_w_avg=training)

    def metric_inputs(self) -> dict[str, Any]:
        """``generator_fn`` (truncated as configured) and ``model``: the EMA generator at the
        current stage, untruncated, with ``mapping``/``synthesis``/``z_dim`` for PPL."""
        inputs = super().metric_inputs()
        staged = self.staged()
        staged.truncation_psi, staged.truncation_cutoff = 1.0, None
        inputs["model"] = staged
        return inputs


def path_length_penalty(generator: torch.nn.Module, z: torch.Tensor, pl_mean: torch.Tensor,
                        pl_decay: float = 0.01, mixing_prob: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """StyleGAN2's path-length regulariser (§3.2, Eq. 4): ``(||J_w^T y||_2 - a)^2``.

    ``y`` is Gaussian noise scaled by ``1/sqrt(H·W)`` (so the expected length does not depend
    on the resolution), ``J_w^T y`` the gradient of ``<G(w), y>`` with respect to every ws row,
    its length the root of the squared norms summed over ``w_dim`` and averaged over rows, and
    ``a`` the running mean of the lengths, updated in place: ``pl_mean ← lerp(pl_mean,
    mean length, pl_decay)``.

    Args:
        generator: a generator with ``mapping``, ``synthesis`` and ``mixing_regularization``.
        z: ``(N, z_dim)`` latents for this penalty (StyleGAN2 uses half the batch).
        pl_mean: the running mean ``a`` (a 0-d buffer), updated in place.
        pl_decay: decay of the running mean (0.01).
        mixing_prob: style-mixing probability for the latents (as the main pass).

    Returns:
        ``(penalty, lengths)``: the mean penalty (a scalar with a graph) and the per-sample lengths.
    """
    ws = generator.mapping(z, update_w_avg=False)
    if mixing_prob > 0:
        ws = generator.mixing_regularization(z, ws, mixing_prob, update_w_avg=False)
    if not ws.requires_grad:  # no trainable mapping (mapping_layers=0): differentiate w.r.t. ws itself
        ws = ws.detach().requires_grad_(True)
    img = generator.synthesis(ws)
    noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
    (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    lengths = grad.square().sum(2).mean(1).sqrt()
    with torch.no_grad():
        pl_mean.copy_(pl_mean.lerp(lengths.mean().to(pl_mean.dtype), pl_decay))
    penalty = (lengths - pl_mean).square().mean()
    return penalty, lengths


class StyleGAN2Module(GANModule):
    """StyleGAN2 training (config F, App. B): logistic loss, lazy R1, path length, no growing.

    Lazy regularisation: R1 runs on D steps with ``iteration % r1_every == 0`` and the path
    length on G steps with ``iteration % pl_every == 0``, each multiplied by its interval.
    ``iteration`` (the GANModule's batch counter) and ``pl_mean`` (a buffer) are saved in
    checkpoints, so a resumed run keeps the same lazy schedule and running mean.

    Args:
        net: a :class:`~genface.models.stylegan2.StyleGAN2`.
        objective: a :class:`~genface.training.objective.GANObjective` or a mapping over
            ``default_objective`` (config F: logistic loss, R1 gamma 10 every 16, path length 2 every 4
            on half the batch with decay 0.01, mixing 0.9). ``r1_gamma``: 10 at 1024 px; stylegan2-ada's
            heuristic is ``0.0002 · res² / batch``.
        lr_g: generator learning rate (StyleGAN2: 2e-3; 2.5e-3 in stylegan2-ada's ``paper256``).
        lr_d: discriminator learning rate.
        betas: Adam betas (0, 0.99).
        ema_kimg: ``G_ema`` half-life in thousands of images (config F: 10); ``None`` = no EMA.
        ema_rampup: ramp-up of the half-life (stylegan2-ada: 0.05 for ``auto``/``cifar``); ``None`` = none.
        lazy_adam: correct Adam's lr and betas for the lazy intervals (App. B); False = as given.
        sample_truncation_psi: truncation psi for grids and ``generator_fn`` (1 = none).
        sample_truncation_cutoff: truncate only the first ws rows when sampling; ``None`` = all.
        nan_policy: ``"stop"`` or ``"skip"``.
    """

    default_objective: ClassVar[dict[str, Any]] = {
        "loss": "non_saturating", "r1_gamma": 10.0, "r1_every": 16, "pl_weight": 2.0, "pl_every": 4,
        "pl_decay": 0.01, "pl_batch_shrink": 2, "style_mixing_prob": 0.9}
    has_path_length: ClassVar[bool] = True

    def __init__(self, net: torch.nn.Module, objective: GANObjective | Mapping[str, Any] | None = None,
                 lr_g: float = 2e-3, lr_d: float = 2e-3, betas: tuple[float, float] = (0.0, 0.99),
                 lazy_adam: bool = True, ema_kimg: float | None = 10.0, ema_rampup: float | None = 0.05,
                 sample_truncation_psi: float = 1.0, sample_truncation_cutoff: int | None = None,
                 nan_policy: str = "stop"):
        super().__init__(net, objective=objective, lr_g=lr_g, lr_d=lr_d, betas=betas, ema_kimg=ema_kimg,
                         ema_rampup=ema_rampup, nan_policy=nan_policy)
        self.register_buffer("pl_mean", torch.zeros(()))
        self.pl_steps = 0  # path-length penalties applied (logged; for tests and reports)

    def mixes_styles(self) -> bool:
        return getattr(self.net.generator, "num_ws", 1) > 1

    def _mixing_prob(self, training: bool = True) -> float:
        """The style-mixing probability of a training pass (``objective.style_mixing_prob``), else 0."""
        return float(self.objective.style_mixing_prob) if training else 0.0

    def generator_forward(self, z: torch.Tensor, training: bool = False) -> torch.Tensor:
        return self.net.generator(z, mixing_prob=self._mixing_prob(training), update_w_avg=training)

    def generator_regularizer(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        obj = self.objective
        if obj.pl_weight <= 0 or self.iteration % obj.pl_every:
            return {}
        n = max(1, z.shape[0] // obj.pl_batch_shrink)
        penalty, _ = path_length_penalty(self.net.generator, self.sample_z(n), self.pl_mean,
                                         obj.pl_decay, self._mixing_prob())
        self.pl_steps += 1
        self.log("train/pl_mean", self.pl_mean.detach(), on_step=True, on_epoch=False)
        return {"pl": penalty * obj.pl_weight * obj.pl_every}

    def configure_optimizers(self):
        hp, obj = self.hparams, self.objective

        def adam(params, lr, every, reg_on):
            c = every / (every + 1) if (hp.lazy_adam and reg_on and every > 1) else 1.0
            return torch.optim.Adam(params, lr=lr * c, betas=tuple(b**c for b in hp.betas))

        opt_g = adam(self.net.generator.parameters(), hp.lr_g, obj.pl_every, obj.pl_weight > 0)
        opt_d = adam(self.net.discriminator.parameters(), hp.lr_d, obj.r1_every, obj.r1_gamma > 0)
        return [opt_g, opt_d]

    def _generate_with(self, generator: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
        return generator(z, truncation_psi=self.hparams.sample_truncation_psi,
                         truncation_cutoff=self.hparams.sample_truncation_cutoff)

    def metric_inputs(self) -> dict[str, Any]:
        """``generator_fn`` and ``model`` (the EMA generator: ``mapping``/``synthesis``/``z_dim``) for PPL."""
        inputs = super().metric_inputs()
        inputs["model"] = self.sampling_generator()
        return inputs
