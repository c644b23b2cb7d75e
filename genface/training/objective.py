"""The GAN training objective as one typed config, and the generator EMA measured in images.

:class:`GANObjective` gathers every knob of what a GAN trains for (after NVlabs
stylegan2-ada-pytorch ``training/loss.py``, ``StyleGAN2Loss``): the adversarial loss, the
critic schedule, WGAN-GP, ProGAN's drift, R1 with its lazy interval, StyleGAN2's path length and
StyleGAN's style-mixing regularisation. The networks take none of these: they take an explicit
mixing probability and ``update_w_avg`` (NVlabs' ``update_emas``) per call, decided by the
training module (:class:`genface.training.gan.GANModule`) from this config.

Knobs that would do nothing are rejected when the config is built (``gp_weight`` with a loss
other than ``wgan``); the module rejects those its network or its class cannot use (style
mixing without several ws, path length outside StyleGAN2).

:func:`ema_beta` is NVlabs' EMA decay per update with ``ema_kimg`` and ``ema_rampup``
(``training_loop.py``); :class:`GeneratorEMA` applies it to the module's ``G_ema``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from genface.training.losses import GAN_LOSSES

__all__ = ["GANObjective", "GeneratorEMA", "as_objective", "ema_beta"]


@dataclass(frozen=True)
class GANObjective:
    """What a GAN is trained for; every field is a knob of NVlabs' ``StyleGAN2Loss`` or ProGAN's loss.

    Defaults are all "off" with the non-saturating loss; each training module states its paper's
    values in ``default_objective`` (DCGAN, ProGAN, StyleGAN, StyleGAN2) and the YAMLs repeat them.
    """

    loss: str = "non_saturating"  # "non_saturating" (logistic), "hinge", "lsgan" or "wgan" (genface.training.losses)
    n_critic: int = 1  # D steps per G step (WGAN-GP: 5; 1 = alternate)
    gp_weight: float = 0.0  # WGAN-GP lambda (Gulrajani et al. 2017: 10); only with loss="wgan"; 0 = off
    drift: float = 0.0  # ProGAN's drift epsilon: epsilon * D(x)^2 (ProGAN App. A.1: 0.001); 0 = off
    r1_gamma: float = 0.0  # R1 gamma (StyleGAN: 10; NVlabs' heuristic 0.0002 * res^2 / batch); 0 = off
    r1_every: int = 1  # lazy R1 interval in D steps, the penalty scaled by it (StyleGAN2: 16); 1 = every step
    pl_weight: float = 0.0  # StyleGAN2 path-length weight (2); 0 = off (StyleGAN2Module only)
    pl_every: int = 4  # lazy path-length interval in G steps (StyleGAN2: 4)
    pl_decay: float = 0.01  # decay of the running mean path length (StyleGAN2: 0.01)
    pl_batch_shrink: int = 2  # the path-length pass uses batch // pl_batch_shrink latents (StyleGAN2: 2)
    style_mixing_prob: float = 0.0  # StyleGAN §3.1 mixing regularisation in training passes (0.9); 0 = off

    def __post_init__(self):
        if self.loss not in GAN_LOSSES:
            raise ValueError(f"unknown GAN loss {self.loss!r}; valid: {sorted(GAN_LOSSES)}")
        for name in ("n_critic", "r1_every", "pl_every", "pl_batch_shrink"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"objective.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("gp_weight", "drift", "r1_gamma", "pl_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"objective.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.style_mixing_prob <= 1.0:
            raise ValueError(f"objective.style_mixing_prob must be in [0, 1], got {self.style_mixing_prob}")
        if not 0.0 < self.pl_decay <= 1.0:
            raise ValueError(f"objective.pl_decay must be in (0, 1], got {self.pl_decay}")
        if self.gp_weight > 0 and self.loss != "wgan":
            raise ValueError(
                f"objective.gp_weight={self.gp_weight} does nothing with loss={self.loss!r}: the gradient "
                "penalty belongs to WGAN-GP; set objective.gp_weight=0 or objective.loss=wgan")


def as_objective(objective: GANObjective | Mapping[str, Any] | None,
                 defaults: Mapping[str, Any] | None = None) -> GANObjective:
    """A :class:`GANObjective` from an instance, or from a mapping laid over ``defaults``.

    Unknown keys raise :class:`TypeError` naming the valid fields (a Hydra typo fails here).
    """
    if isinstance(objective, GANObjective):
        return objective
    given = dict(objective or {})
    valid = {f.name for f in dataclasses.fields(GANObjective)}
    unknown = sorted(set(given) - valid)
    if unknown:
        raise TypeError(f"GANObjective got unknown field(s) {unknown}; valid fields: {sorted(valid)}")
    return GANObjective(**{**dict(defaults or {}), **given})


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


class GeneratorEMA:
    """The EMA of a generator's weights (ProGAN §A.1; Yazıcı et al. 2019) with NVlabs' decay in images.

    ``theta_ema ← lerp(theta, theta_ema, beta)`` after every training step, ``beta`` from
    :func:`ema_beta`; buffers (BatchNorm statistics, StyleGAN's ``w_avg``) are copied, not
    averaged. The copy itself is a submodule of the training module (``G_ema``), so it is in the
    module's ``state_dict`` and checkpoints; this object keeps the settings and the image counter.

    Args:
        ema_kimg: half-life of the average in thousands of images (StyleGAN2: 10; 0 = the EMA is a copy).
        ema_rampup: the half-life is at most ``images_seen · ema_rampup`` (stylegan2-ada: 0.05), the
            warm-up that keeps a short run's average from being its initialisation; None = no ramp-up.
    """

    def __init__(self, ema_kimg: float = 10.0, ema_rampup: float | None = 0.05):
        if ema_kimg < 0:
            raise ValueError(f"ema_kimg must be >= 0 or None, got {ema_kimg}")
        if ema_rampup is not None and ema_rampup <= 0:
            raise ValueError(f"ema_rampup must be > 0 or None, got {ema_rampup}")
        self.ema_kimg, self.ema_rampup = float(ema_kimg), ema_rampup
        self.images_seen = 0  # images before the current update

    @staticmethod
    def copy_of(generator: torch.nn.Module) -> torch.nn.Module:
        """A frozen copy of ``generator`` to average into (eval mode, no gradients)."""
        return copy.deepcopy(generator).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, ema: torch.nn.Module, generator: torch.nn.Module, batch_images: int) -> float:
        """Average ``generator`` into ``ema`` after a step on ``batch_images`` images; returns beta."""
        beta = ema_beta(batch_images, self.images_seen, self.ema_kimg, self.ema_rampup)
        self.images_seen += int(batch_images)
        for e, p in zip(ema.parameters(), generator.parameters()):
            e.lerp_(p.detach(), 1.0 - beta)
        for e, b in zip(ema.buffers(), generator.buffers()):
            e.copy_(b)
        return beta
