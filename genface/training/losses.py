"""Adversarial losses for :class:`genface.training.gan.GANModule`, by name.

* ``non_saturating`` – Goodfellow et al. 2014 (§3, the -log D(G(z)) trick), the logistic loss of StyleGAN.
* ``hinge`` – Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018.
* ``lsgan`` – Mao et al. 2017, "Least Squares GAN" (a=0, b=c=1).
* ``wgan`` – Arjovsky et al. 2017; with the gradient penalty of Gulrajani et al. 2017 (WGAN-GP)
  and ProGAN's drift term added by the module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _ns_d(real: Tensor, fake: Tensor) -> Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def _ns_g(fake: Tensor) -> Tensor:
    return F.softplus(-fake).mean()


def _hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def _wgan_g(fake: Tensor) -> Tensor:
    return -fake.mean()


def _ls_d(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()


def _ls_g(fake: Tensor) -> Tensor:
    return 0.5 * ((fake - 1) ** 2).mean()


def _wgan_d(real: Tensor, fake: Tensor) -> Tensor:
    return fake.mean() - real.mean()


#: name → (discriminator loss(real_logits, fake_logits), generator loss(fake_logits))
GAN_LOSSES = {
    "non_saturating": (_ns_d, _ns_g),
    "hinge": (_hinge_d, _wgan_g),
    "lsgan": (_ls_d, _ls_g),
    "wgan": (_wgan_d, _wgan_g),
}


def get_gan_loss(name: str):
    """Return ``(d_loss, g_loss)`` for a loss name; unknown names list the valid ones."""
    if name not in GAN_LOSSES:
        raise ValueError(f"unknown GAN loss {name!r}; valid: {sorted(GAN_LOSSES)}")
    return GAN_LOSSES[name]


def gradient_penalty(discriminator, real: Tensor, fake: Tensor, **d_kwargs) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017, eq. 3): E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    out = discriminator(x_hat, **d_kwargs)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def r1_penalty(real_logits: Tensor, real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018, eq. 9) without the gamma/2 factor: E[||grad D(x)||^2] on reals.

    ``real`` must have had ``requires_grad_(True)`` before the discriminator saw it.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()
