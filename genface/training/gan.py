"""GAN training with manual optimisation, for every generator/discriminator pair in genface.

The network (``net``) is any module with ``generator``, ``discriminator`` and ``z_dim``
(DCGAN, ProGAN, StyleGAN, StyleGAN2). This module owns the training: the objective
(:class:`~genface.training.objective.GANObjective`: losses, critic schedule, regularisers, style
mixing), the optimisers and the generator EMA ``G_ema`` (decay in images, NVlabs ``ema_kimg``),
kept in its own state and checkpoints as NVlabs' training loop keeps ``G_ema`` beside ``G``.
Sample grids are a callback.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import torch

from genface.training.base import GenerativeModule
from genface.training.losses import get_gan_loss, gradient_penalty, r1_penalty
from genface.training.objective import GANObjective, GeneratorEMA, as_objective
from genface.utils import seeded_randn


@contextmanager
def _uncounted(optimizer):
    """Step ``optimizer`` without advancing Lightning's ``global_step``.

    In manual optimisation Lightning counts every ``optimizer.step()``; genface counts one
    step per training iteration (one batch of real images), so that ``trainer.max_steps``
    means the same for every model. Only the discriminator's step is counted.

    ``_on_before_step``/``_on_after_step`` are private attributes of Lightning's
    ``LightningOptimizer`` (2.x): Lightning has no public way to step an optimiser uncounted,
    which is why ``pyproject.toml`` bounds ``lightning`` below 3.
    """
    before, after = optimizer._on_before_step, optimizer._on_after_step
    optimizer._on_before_step = optimizer._on_after_step = lambda: None
    try:
        yield
    finally:
        optimizer._on_before_step, optimizer._on_after_step = before, after


@contextmanager
def _frozen(module: torch.nn.Module):
    """Turn off ``requires_grad`` of ``module``'s trainable parameters for the block, then restore it.

    The generator's loss backpropagates through D to reach G; D's own weight gradients from that
    pass would be thrown away (NVlabs toggles ``requires_grad`` per phase for the same reason),
    and computing them costs about a third of D's backward. Input gradients are unchanged.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class GANModule(GenerativeModule):
    """Adversarial training: D step every batch, G step every ``objective.n_critic`` batches, and
    the generator EMA ``G_ema`` updated after every batch.

    Args:
        net: the GAN (``net.generator(z)``, ``net.discriminator(x)``, ``net.z_dim``).
        objective: a :class:`~genface.training.objective.GANObjective` or a mapping of its fields
            laid over this class's ``default_objective`` (DCGAN: the non-saturating loss, nothing else).
        lr_g: generator Adam learning rate (DCGAN: 2e-4).
        lr_d: discriminator Adam learning rate.
        betas: Adam betas for both (DCGAN: (0.5, 0.999); ProGAN/StyleGAN: (0, 0.99)).
        ema_kimg: half-life of ``G_ema`` in thousands of images (NVlabs ``ema_kimg``; StyleGAN2: 10);
            ``None`` = no EMA (samples and exports use the trained generator).
        ema_rampup: the half-life is at most ``images_seen · ema_rampup`` (NVlabs: 0.05), the EMA's
            warm-up; ``None`` = no ramp-up.
        nan_policy: see :class:`~genface.training.base.GenerativeModule`.
    """

    #: this class's objective (fields of GANObjective) under the ``objective`` mapping given
    default_objective: ClassVar[dict[str, Any]] = {}
    #: whether ``generator_regularizer`` implements the path length (StyleGAN2Module)
    has_path_length: ClassVar[bool] = False

    def __init__(self, net: torch.nn.Module, objective: GANObjective | Mapping[str, Any] | None = None,
                 lr_g: float = 2e-4, lr_d: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999),
                 ema_kimg: float | None = 10.0, ema_rampup: float | None = 0.05, nan_policy: str = "stop"):
        super().__init__(nan_policy=nan_policy)
        self.automatic_optimization = False
        self.net = net
        self.objective = obj = as_objective(objective, self.default_objective)
        self.d_loss_fn, self.g_loss_fn = get_gan_loss(obj.loss)
        if obj.pl_weight > 0 and not self.has_path_length:
            raise ValueError(f"objective.pl_weight={obj.pl_weight} does nothing in {type(self).__name__}: the "
                             "path-length regulariser is StyleGAN2's (StyleGAN2Module); set objective.pl_weight=0")
        if obj.style_mixing_prob > 0 and not self.mixes_styles():
            raise ValueError(f"objective.style_mixing_prob={obj.style_mixing_prob} does nothing for "
                             f"{type(net.generator).__name__} (it has no several ws to mix); set it to 0")
        self.save_hyperparameters(ignore=["net"])
        self.hparams["objective"] = dataclasses.asdict(obj)
        self.iteration = 0  # batches trained on; saved in checkpoints
        self.ema = GeneratorEMA(ema_kimg, ema_rampup) if ema_kimg is not None else None
        self.G_ema = GeneratorEMA.copy_of(net.generator) if self.ema is not None else None

    def train(self, mode: bool = True):
        """As ``nn.Module.train``, but ``G_ema`` stays in eval mode (it is never trained; NVlabs
        keeps ``G_ema`` in eval mode too)."""
        super().train(mode)
        if self.G_ema is not None:
            self.G_ema.eval()
        return self

    def on_fit_start(self) -> None:
        super().on_fit_start()
        # Lightning warns about modules in eval mode at the start of training; G_ema is meant to
        # be. Hide the warning only when G_ema's modules are the only ones in eval mode.
        others = [n for n, m in self.named_modules() if not m.training and not n.startswith("G_ema")]
        if self.G_ema is not None and not others:
            warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")

    def mixes_styles(self) -> bool:
        """Whether :meth:`generator_forward` applies ``objective.style_mixing_prob`` (StyleGAN's modules)."""
        return False

    @property
    def loss_name(self) -> str:
        """The adversarial loss's name (``objective.loss``)."""
        return self.objective.loss

    # Hooks that progressive/style models override (stage and alpha for ProGAN, mixing for StyleGAN).
    def generator_forward(self, z: torch.Tensor, training: bool = False) -> torch.Tensor:
        """``G(z)``; ``training`` = a training pass (style mixing and the ``w_avg`` update where the
        network has them, decided here rather than by the network's train/eval mode)."""
        return self.net.generator(z)

    def discriminator_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.discriminator(x).flatten()

    def sample_z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.net.z_dim, device=self.device)

    def prepare_real(self, real: torch.Tensor) -> torch.Tensor:
        """Real images as the discriminator should see them (ProGAN resizes to the current stage)."""
        return real

    def generator_regularizer(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Extra generator losses (StyleGAN2's path length); none here."""
        return {}

    def configure_optimizers(self):
        b = tuple(self.hparams.betas)
        opt_g = torch.optim.Adam(self.net.generator.parameters(), lr=self.hparams.lr_g, betas=b)
        opt_d = torch.optim.Adam(self.net.discriminator.parameters(), lr=self.hparams.lr_d, betas=b)
        return [opt_g, opt_d]

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        obj = self.objective
        opt_g, opt_d = self.optimizers()
        real = self.prepare_real(batch["image"])
        n = real.shape[0]

        # -- discriminator -----------------------------------------------------------------
        with torch.no_grad():
            fake = self.generator_forward(self.sample_z(n), training=True)
        do_r1 = obj.r1_gamma > 0 and self.iteration % obj.r1_every == 0
        real_in = real.detach().requires_grad_(do_r1)
        real_logits = self.discriminator_forward(real_in)
        fake_logits = self.discriminator_forward(fake)
        losses = {"d_adv": self.d_loss_fn(real_logits, fake_logits)}
        if obj.gp_weight > 0:  # GANObjective allows it only with loss="wgan"
            losses["gp"] = obj.gp_weight * gradient_penalty(
                lambda x, **kw: self.discriminator_forward(x), real, fake)
        if obj.drift > 0:
            losses["drift"] = obj.drift * real_logits.pow(2).mean()
        if do_r1:
            losses["r1"] = 0.5 * obj.r1_gamma * obj.r1_every * r1_penalty(real_logits, real_in)
        d_loss = sum(losses.values())
        opt_d.zero_grad(set_to_none=True)
        if self.guard_finite({"d_loss": d_loss, **losses}, batch):
            self.manual_backward(d_loss)
        opt_d.step()  # a skipped step has no gradients: Adam leaves the weights alone, the step still counts
        log = {"train/d_loss": d_loss.detach(), "train/d_real": real_logits.detach().mean(),
               "train/d_fake": fake_logits.detach().mean()}
        log.update({f"train/{k}": v.detach() for k, v in losses.items() if k != "d_adv"})

        # -- generator -------------------------------------------------------------------------
        if self.iteration % obj.n_critic == 0:
            z = self.sample_z(n)
            with _frozen(self.net.discriminator):  # D's weight gradients are not needed here
                fake = self.generator_forward(z, training=True)
                g_losses = {"g_adv": self.g_loss_fn(self.discriminator_forward(fake))}
                g_losses.update(self.generator_regularizer(z))
                g_loss = sum(g_losses.values())
                opt_g.zero_grad(set_to_none=True)
                if self.guard_finite({"g_loss": g_loss, **g_losses}, batch):
                    self.manual_backward(g_loss)
            with _uncounted(opt_g):
                opt_g.step()
            log["train/g_loss"] = g_loss.detach()
            log.update({f"train/{k}": v.detach() for k, v in g_losses.items() if k != "g_adv"})
        self.iteration += 1
        if self.G_ema is not None:  # after both steps, before any callback saves a checkpoint
            world = self.trainer.world_size if self._trainer is not None else 1
            log["train/ema_beta"] = torch.tensor(self.ema.update(self.G_ema, self.net.generator, n * world))
        self.log_dict(log, prog_bar=False, on_step=True, on_epoch=False)
        self.log("d_loss", d_loss.detach(), prog_bar=True, logger=False)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        real = self.prepare_real(batch["image"])
        fake = self.generator_forward(self.sample_z(real.shape[0]))
        d_real, d_fake = self.discriminator_forward(real), self.discriminator_forward(fake)
        self.log("val/d_loss", self.d_loss_fn(d_real, d_fake), sync_dist=True)
        self.log("val/g_loss", self.g_loss_fn(d_fake), sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["genface_iteration"] = self.iteration
        if self.ema is not None:
            checkpoint["genface_ema_images"] = self.ema.images_seen

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._upgrade_ema_state(checkpoint)
        super().on_load_checkpoint(checkpoint)
        self.iteration = checkpoint.get("genface_iteration", 0)
        if self.ema is not None:
            self.ema.images_seen = int(checkpoint.get("genface_ema_images", 0))

    def _upgrade_ema_state(self, checkpoint: dict[str, Any]) -> None:
        """Checkpoints written before ``G_ema`` moved into the module kept it in the state of the
        ``EMA`` callback: put it (or, without one, the generator's weights) under ``G_ema.*``."""
        state = checkpoint.get("state_dict")
        if self.G_ema is None or not isinstance(state, dict) or any(k.startswith("G_ema.") for k in state):
            return
        old = next((v for k, v in (checkpoint.get("callbacks") or {}).items()
                    if str(k).startswith("EMA") and isinstance(v, dict) and "ema" in v), None)
        source = old["ema"] if old else {k[len("net.generator."):]: v for k, v in state.items()
                                         if k.startswith("net.generator.")}
        state.update({f"G_ema.{k}": v for k, v in source.items()})
        if old:
            checkpoint.setdefault("genface_ema_images", int(old.get("images_seen", 0)))

    # -- sampling ------------------------------------------------------------------------------
    def sampling_generator(self) -> torch.nn.Module:
        """``G_ema`` when the module keeps one (``ema_kimg`` set), else the trained generator."""
        return self.G_ema if self.G_ema is not None else self.net.generator

    @torch.no_grad()
    def sample_images(self, n: int, seed: int = 0, z: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` images in [-1, 1] from ``G_ema``: ``seed`` fixes ``z`` and every other draw (the
        StyleGANs' noise inputs), on a forked RNG, so that sampling leaves training's RNG alone.
        Clamped, as ProGAN's and the StyleGANs' outputs are linear (no tanh)."""
        g = self.sampling_generator()
        if z is None:
            z = seeded_randn(n, self.net.z_dim, seed=seed)
        was = g.training
        g.eval()
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                return self._generate_with(g, z.to(self.device)).clamp(-1, 1)
        finally:
            g.train(was)

    def _generate_with(self, generator: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
        return generator(z)

    def export_pretrained(self, directory):
        net = self.net
        if self.G_ema is not None:
            net = copy.deepcopy(self.net)
            net.generator.load_state_dict(self.G_ema.state_dict())
        return net.save_pretrained(directory)
