"""Progressive growing (ProGAN, Karras et al., ICLR 2018, arXiv 1710.10196) as a training module.

:class:`GrowthSchedule` turns the number of real images shown to the discriminator into a
``(stage, alpha)`` pair (ProGAN §2 and App. A: each resolution is first faded in over
``fade_images`` images, then stabilised for ``stable_images``). :class:`ProGANModule` owns the
schedule: the image counter is saved in checkpoints, so a run resumed in the middle of a phase
continues with the same stage and alpha. Real images are downsampled to the stage's resolution
and, during a fade-in, blended with their 2x-coarser version exactly as the generator's output
is (ProGAN App. A.1, "we also blend the real images"), so that D never sees a resolution
mismatch between reals and fakes.

Loss: WGAN-GP (Gulrajani et al. 2017, lambda = 10) plus the drift term
``epsilon · D(x)^2`` with ``epsilon = 0.001`` (ProGAN App. A.1); Adam ``lr = 1e-3``,
``betas = (0, 0.99)``. One Adam per network over *all* its parameters for the whole run, so
optimiser state carries across phases (parameters of stages not yet reached get no gradient
and Adam leaves them and their moments alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from genface.nn.progressive import num_stages, stage_resolution
from genface.training.gan import GANModule
from genface.training.objective import GANObjective

__all__ = ["GrowthSchedule", "ProGANModule", "StagedGenerator", "downsample_real", "fade_real"]


@dataclass(frozen=True)
class GrowthSchedule:
    """When to grow: stage 0 (4x4) for ``stable_images``, then for every further stage a
    fade-in of ``fade_images`` (``alpha`` 0 → 1 linearly in images) followed by
    ``stable_images`` at ``alpha = 1``; the last stage stays forever once faded in.

    ProGAN (App. A.1) used 800k images per fade and per stabilisation.

    Args:
        resolution: target resolution (the last stage is ``log2(resolution) - 2``).
        fade_images: real images shown during each fade-in; 0 = new stages appear at once.
        stable_images: real images shown at each stage after its fade-in (and at 4x4).
        start_stage: stage training begins at (0 = 4x4, as the paper); earlier stages are skipped.
    """

    resolution: int
    fade_images: int = 800_000
    stable_images: int = 800_000
    start_stage: int = 0

    def __post_init__(self):
        if self.fade_images < 0 or self.stable_images < 0:
            raise ValueError(f"fade_images and stable_images must be >= 0, got {self.fade_images}, "
                             f"{self.stable_images}")
        if not 0 <= self.start_stage < self.num_stages:
            raise ValueError(f"start_stage must be in [0, {self.num_stages - 1}], got {self.start_stage}")

    @property
    def num_stages(self) -> int:
        return num_stages(self.resolution)

    def phase_start(self, stage: int) -> int:
        """Images seen when the fade-in of ``stage`` begins (``stage > start_stage``)."""
        return self.stable_images + (stage - self.start_stage - 1) * (self.fade_images + self.stable_images)

    def at(self, images: int) -> tuple[int, float]:
        """``(stage, alpha)`` after ``images`` real images have been shown."""
        if images < 0:
            raise ValueError(f"images must be >= 0, got {images}")
        stage, alpha = self.start_stage, 1.0
        for k in range(self.start_stage + 1, self.num_stages):
            begin = self.phase_start(k)
            if images < begin:
                break
            stage = k
            alpha = 1.0 if self.fade_images == 0 else min(1.0, (images - begin) / self.fade_images)
        return stage, alpha

    def images_to_full(self) -> int:
        """Images after which the last stage is fully faded in."""
        if self.num_stages - 1 == self.start_stage:
            return 0
        return self.phase_start(self.num_stages - 1) + self.fade_images


def downsample_real(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Box-filter ``x`` ``(N, C, R, R)`` down to ``resolution`` (ProGAN's ``downscale2d``)."""
    factor = x.shape[-1] // resolution
    if factor * resolution != x.shape[-1] or x.shape[-2] != x.shape[-1]:
        raise ValueError(f"cannot box-downsample images of size {tuple(x.shape[-2:])} to {resolution}")
    return F.avg_pool2d(x, factor) if factor > 1 else x


def fade_real(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """``lerp(up(down(x)), x, alpha)``: the 2x-coarser image (box down, nearest up) faded into ``x``."""
    if alpha >= 1:
        return x
    coarse = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
    return torch.lerp(coarse, x, float(alpha))


class StagedGenerator(torch.nn.Module):
    """A progressive generator frozen at one ``(stage, alpha)``, upsampled to the final size.

    It offers what metrics and grids need from a generator that may still be growing:
    ``forward(z)``, ``mapping(z, ...)``, ``synthesis(ws, noise_mode=...)`` and ``z_dim``
    (used as ``model`` for PPL). Images below the final resolution are upsampled with
    nearest neighbours so that they can be compared with full-size references.

    Args:
        generator: a ProGAN/StyleGAN generator (``synthesis(ws, stage=, alpha=, noise_mode=)``).
        stage: the stage to render (``None`` = the last).
        alpha: fade-in weight of ``stage``.
        truncation_psi: default ``psi`` for :meth:`mapping` and :meth:`forward` (1 = none).
        truncation_cutoff: truncate only the first ws rows; ``None`` = all.
    """

    def __init__(self, generator: torch.nn.Module, stage: int | None, alpha: float,
                 truncation_psi: float = 1.0, truncation_cutoff: int | None = None):
        super().__init__()
        self.generator = generator
        self.stage, self.alpha = stage, float(alpha)
        self.truncation_psi, self.truncation_cutoff = truncation_psi, truncation_cutoff
        self.z_dim = generator.z_dim
        self.resolution = generator.resolution

    def mapping(self, z: torch.Tensor, truncation_psi: float | None = None,
                truncation_cutoff: int | None = None, update_w_avg: bool = False) -> torch.Tensor:
        psi = self.truncation_psi if truncation_psi is None else truncation_psi
        cutoff = self.truncation_cutoff if truncation_cutoff is None else truncation_cutoff
        return self.generator.mapping(z, truncation_psi=psi, truncation_cutoff=cutoff, update_w_avg=update_w_avg)

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        img = self.generator.synthesis(ws, stage=self.stage, alpha=self.alpha, noise_mode=noise_mode)
        factor = self.resolution // img.shape[-1]
        return F.interpolate(img, scale_factor=factor, mode="nearest") if factor > 1 else img

    def forward(self, z: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        return self.synthesis(self.mapping(z), noise_mode=noise_mode)


def _batch_sizes(batch_sizes: Mapping[Any, Any] | None) -> dict[int, int]:
    out = {int(k): int(v) for k, v in (batch_sizes or {}).items()}
    bad = {k: v for k, v in out.items() if v < 1 or k < 4 or k & (k - 1)}
    if bad:
        raise ValueError(f"batch_sizes must map power-of-two resolutions >= 4 to sizes >= 1, got {bad}")
    return out


class ProGANModule(GANModule):
    """ProGAN training: progressive growing with fade-in, WGAN-GP + drift, per-resolution batches.

    ``net`` is a :class:`~genface.models.progan.ProGAN` or a
    :class:`~genface.models.stylegan.StyleGAN` (anything whose generator and discriminator
    take ``stage=`` and ``alpha=``). The module keeps ``images_seen`` (real images shown to D,
    saved in checkpoints) and derives ``stage`` and ``alpha`` from it before every step
    (logged as ``train/stage`` and ``train/alpha``).

    Per-resolution batch sizes (ProGAN App. A.1 lowered the minibatch as resolution grew):
    ``batch_sizes`` maps a resolution to a batch size; each batch from the datamodule is
    *sliced* to that size (the datamodule's ``batch_size`` must be the largest one; the
    discarded images are not counted as seen). Resolutions not listed use the full batch.

    Args:
        net: the progressive GAN.
        fade_images: real images per fade-in phase; 0 = no fade; ``None`` = the paper's
            (``default_phase_images``: ProGAN 800k, StyleGAN 600k).
        stable_images: real images per stabilisation phase; ``None`` = the paper's.
        start_stage: first stage trained (0 = 4x4).
        growing: False = no progressive growing: train at the final resolution from the start.
        batch_sizes: ``{resolution: batch size}``; ``None`` = the datamodule's batch everywhere.
        objective: a :class:`~genface.training.objective.GANObjective` or a mapping over
            ``default_objective`` (ProGAN: WGAN-GP, lambda 10, drift 0.001).
        lr_g: generator Adam learning rate (ProGAN: 1e-3).
        lr_d: discriminator Adam learning rate (ProGAN: 1e-3).
        betas: Adam betas (ProGAN: (0, 0.99)).
        ema_kimg: ``G_ema`` half-life in thousands of images (ProGAN's 0.999 per batch of 16 is
            about 11); ``None`` = no EMA.
        ema_rampup: ramp-up of the half-life (NVlabs 0.05); ``None`` = none.
        sample_truncation_psi: truncation ``psi`` for sample grids and metrics (1 = none).
        sample_truncation_cutoff: truncate only the first ws rows when sampling; ``None`` = all.
        nan_policy: ``"stop"`` or ``"skip"`` (see :class:`~genface.training.base.GenerativeModule`).
    """

    default_objective: ClassVar[dict[str, Any]] = {"loss": "wgan", "gp_weight": 10.0, "drift": 0.001}

    #: images per fade-in and per stabilisation phase in the paper (ProGAN App. A.1)
    default_phase_images: ClassVar[int] = 800_000

    def __init__(self, net: torch.nn.Module, fade_images: int | None = None, stable_images: int | None = None,
                 start_stage: int = 0, growing: bool = True, batch_sizes: dict[int, int] | None = None,
                 objective: GANObjective | Mapping[str, Any] | None = None, lr_g: float = 1e-3,
                 lr_d: float = 1e-3, betas: tuple[float, float] = (0.0, 0.99), ema_kimg: float | None = 10.0,
                 ema_rampup: float | None = 0.05, sample_truncation_psi: float = 1.0,
                 sample_truncation_cutoff: int | None = None, nan_policy: str = "stop"):
        super().__init__(net, objective=objective, lr_g=lr_g, lr_d=lr_d, betas=betas, ema_kimg=ema_kimg,
                         ema_rampup=ema_rampup, nan_policy=nan_policy)
        self.resolution = int(net.generator.resolution)
        last = num_stages(self.resolution) - 1
        phase = self.default_phase_images
        self.schedule = GrowthSchedule(self.resolution, phase if fade_images is None else fade_images,
                                       phase if stable_images is None else stable_images,
                                       start_stage if growing else last)
        self.batch_sizes = _batch_sizes(batch_sizes)
        self.images_seen = 0  # real images shown to D; saved in checkpoints
        self.stage, self.alpha = self.schedule.at(0)

    # -- schedule -------------------------------------------------------------------------
    def update_schedule(self) -> tuple[int, float]:
        """Set ``stage`` and ``alpha`` from ``images_seen``."""
        self.stage, self.alpha = self.schedule.at(self.images_seen)
        return self.stage, self.alpha

    @property
    def stage_resolution(self) -> int:
        return stage_resolution(self.stage)

    def batch_size_at(self, resolution: int, available: int) -> int:
        """Images used from a batch of ``available`` at ``resolution``."""
        return min(available, self.batch_sizes.get(resolution, available))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.update_schedule()
        n = self.batch_size_at(self.stage_resolution, batch["image"].shape[0])
        if n < batch["image"].shape[0]:
            batch = {k: v[:n] if torch.is_tensor(v) and v.ndim > 0 else v for k, v in batch.items()}
        super().training_step(batch, batch_idx)
        self.images_seen += n
        self.log_dict({"train/stage": float(self.stage), "train/alpha": float(self.alpha)},
                      on_step=True, on_epoch=False)

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self.update_schedule()

    # -- GANModule hooks --------------------------------------------------------------------
    def generator_forward(self, z: torch.Tensor, training: bool = False) -> torch.Tensor:
        return self.net.generator(z, stage=self.stage, alpha=self.alpha)

    def discriminator_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.discriminator(x, stage=self.stage, alpha=self.alpha).flatten()

    def prepare_real(self, real: torch.Tensor) -> torch.Tensor:
        if real.shape[-1] != self.resolution:
            raise ValueError(f"real images are {real.shape[-1]} px but the network is built for "
                             f"{self.resolution} px: set data.resolution to the model's resolution")
        x = downsample_real(real, self.stage_resolution)
        return fade_real(x, self.alpha) if self.stage > 0 else x

    # -- checkpoints ----------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["genface_images_seen"] = self.images_seen

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.images_seen = int(checkpoint.get("genface_images_seen", 0))
        self.update_schedule()

    # -- sampling ---------------------------------------------------------------------------------
    def staged(self, generator: torch.nn.Module | None = None) -> StagedGenerator:
        """``generator`` (default: the EMA one) at the current stage and alpha, full-size output."""
        self.update_schedule()
        g = self.sampling_generator() if generator is None else generator
        return StagedGenerator(g, self.stage, self.alpha, self.hparams.sample_truncation_psi,
                               self.hparams.sample_truncation_cutoff)

    def _generate_with(self, generator: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
        return self.staged(generator)(z)
