"""GAN training with manual optimisation, for every generator/discriminator pair in genface.

The network (``net``) is any module with ``generator``, ``discriminator`` and ``z_dim``
(DCGAN, ProGAN, StyleGAN, StyleGAN2). This module owns the losses, the optimisers, the
critic schedule and the regularisers; EMA and sample grids are callbacks.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Any

import torch

from genface.training.base import GenerativeModule
from genface.training.losses import get_gan_loss, gradient_penalty, r1_penalty


@contextmanager
def _uncounted(optimizer):
    """Step ``optimizer`` without advancing Lightning's ``global_step``.

    In manual optimisation Lightning counts every ``optimizer.step()``; genface counts one
    step per training iteration (one batch of real images), so that ``trainer.max_steps``
    means the same for every model. Only the discriminator's step is counted.
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
    """Adversarial training: D step every batch, G step every ``n_critic`` batches.

    Args:
        net: the GAN (``net.generator(z)``, ``net.discriminator(x)``, ``net.z_dim``).
        loss: ``"non_saturating"``, ``"hinge"``, ``"lsgan"`` or ``"wgan"`` (see :mod:`genface.training.losses`).
        lr_g: generator Adam learning rate (DCGAN: 2e-4).
        lr_d: discriminator Adam learning rate.
        betas: Adam betas for both (DCGAN: (0.5, 0.999); ProGAN/StyleGAN: (0, 0.99)).
        n_critic: discriminator steps per generator step (WGAN-GP: 5; 1 = alternate).
        gp_weight: WGAN-GP lambda (Gulrajani et al.: 10); 0 = no gradient penalty.
        drift: ProGAN's drift term epsilon · D(x)^2 (ProGAN: 0.001); 0 = off.
        r1_gamma: R1 weight gamma (StyleGAN: 10); 0 = off.
        r1_every: apply R1 every this many D steps, scaled up to match (lazy regularisation,
            StyleGAN2: 16); 1 = every step.
        nan_policy: see :class:`~genface.training.base.GenerativeModule`.
    """

    def __init__(self, net: torch.nn.Module, loss: str = "non_saturating", lr_g: float = 2e-4,
                 lr_d: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999), n_critic: int = 1,
                 gp_weight: float = 10.0, drift: float = 0.0, r1_gamma: float = 0.0, r1_every: int = 1,
                 nan_policy: str = "stop"):
        super().__init__(nan_policy=nan_policy)
        self.automatic_optimization = False
        self.net = net
        self.loss_name = loss
        self.d_loss_fn, self.g_loss_fn = get_gan_loss(loss)
        if n_critic < 1 or r1_every < 1:
            raise ValueError("n_critic and r1_every must be >= 1")
        self.save_hyperparameters(ignore=["net"])
        self.iteration = 0  # batches trained on; saved in checkpoints
        self.ema: Any = None  # set by genface.training.callbacks.EMA

    # Hooks that progressive/style models override (stage and alpha for ProGAN, mixing for StyleGAN).
    def generator_forward(self, z: torch.Tensor) -> torch.Tensor:
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
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        real = self.prepare_real(batch["image"])
        n = real.shape[0]

        # -- discriminator -----------------------------------------------------------------
        with torch.no_grad():
            fake = self.generator_forward(self.sample_z(n))
        do_r1 = hp.r1_gamma > 0 and self.iteration % hp.r1_every == 0
        real_in = real.detach().requires_grad_(do_r1)
        real_logits = self.discriminator_forward(real_in)
        fake_logits = self.discriminator_forward(fake)
        losses = {"d_adv": self.d_loss_fn(real_logits, fake_logits)}
        if self.loss_name == "wgan" and hp.gp_weight > 0:
            losses["gp"] = hp.gp_weight * gradient_penalty(
                lambda x, **kw: self.discriminator_forward(x), real, fake)
        if hp.drift > 0:
            losses["drift"] = hp.drift * real_logits.pow(2).mean()
        if do_r1:
            losses["r1"] = 0.5 * hp.r1_gamma * hp.r1_every * r1_penalty(real_logits, real_in)
        d_loss = sum(losses.values())
        opt_d.zero_grad(set_to_none=True)
        if self.guard_finite({"d_loss": d_loss, **losses}, batch):
            self.manual_backward(d_loss)
        opt_d.step()  # a skipped step has no gradients: Adam leaves the weights alone, the step still counts
        log = {"train/d_loss": d_loss.detach(), "train/d_real": real_logits.detach().mean(),
               "train/d_fake": fake_logits.detach().mean()}
        log.update({f"train/{k}": v.detach() for k, v in losses.items() if k != "d_adv"})

        # -- generator -------------------------------------------------------------------------
        if self.iteration % hp.n_critic == 0:
            z = self.sample_z(n)
            with _frozen(self.net.discriminator):  # D's weight gradients are not needed here
                g_losses = {"g_adv": self.g_loss_fn(self.discriminator_forward(self.generator_forward(z)))}
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

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.iteration = checkpoint.get("genface_iteration", 0)

    # -- sampling ------------------------------------------------------------------------------
    def sampling_generator(self) -> torch.nn.Module:
        """The EMA generator when an EMA callback keeps one, else the trained generator."""
        return self.ema.module if self.ema is not None else self.net.generator

    @torch.no_grad()
    def sample_images(self, n: int, seed: int = 0, z: torch.Tensor | None = None) -> torch.Tensor:
        g = self.sampling_generator()
        if z is None:
            z = torch.randn(n, self.net.z_dim, generator=torch.Generator().manual_seed(seed))
        was = g.training
        g.eval()
        try:
            return self._generate_with(g, z.to(self.device))
        finally:
            g.train(was)

    def _generate_with(self, generator: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
        return generator(z)

    def export_pretrained(self, directory):
        net = self.net
        if self.ema is not None:
            net = copy.deepcopy(self.net)
            net.generator.load_state_dict(self.ema.module.state_dict())
        return net.save_pretrained(directory)
