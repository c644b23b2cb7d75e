"""VAE training: reconstruction + beta · KL with linear KL warm-up (Kingma & Welling 2013;
warm-up as in Bowman et al. 2016 and Sønderby et al. 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genface.models.vae import kl_divergence
from genface.training.base import GenerativeModule

_RECON = {
    # Both are summed over pixels per image (the Gaussian / Laplace log-likelihood up to a
    # constant), so that the per-image KL keeps its meaning; see ANCHORS "mis-scaled KL".
    "mse": lambda x_hat, x: F.mse_loss(x_hat, x, reduction="none").flatten(1).sum(1),
    "l1": lambda x_hat, x: F.l1_loss(x_hat, x, reduction="none").flatten(1).sum(1),
}


class VAEModule(GenerativeModule):
    """Trains a :class:`genface.models.vae.VAE`.

    Loss per image = recon(x_hat, x) + beta_t · KL(q(z|x) || N(0, I)), averaged over the batch,
    with beta_t = beta · min(1, step / kl_warmup_steps).

    Args:
        net: the VAE.
        beta: KL weight (1 = the ELBO; >1 = beta-VAE).
        kl_warmup_steps: steps over which beta rises linearly from 0; 0 = no warm-up.
        recon: ``"mse"`` or ``"l1"``, summed per image.
        lr: Adam learning rate.
        betas: Adam betas.
        nan_policy: see :class:`~genface.training.base.GenerativeModule`.
    """

    def __init__(self, net: torch.nn.Module, beta: float = 1.0, kl_warmup_steps: int = 1000,
                 recon: str = "mse", lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 nan_policy: str = "stop"):
        super().__init__(nan_policy=nan_policy)
        if recon not in _RECON:
            raise ValueError(f"unknown recon loss {recon!r}; valid: {sorted(_RECON)}")
        self.net = net
        self.recon_fn = _RECON[recon]
        self.save_hyperparameters(ignore=["net"])

    def kl_weight(self) -> float:
        w = self.hparams.kl_warmup_steps
        return self.hparams.beta * (min(1.0, self.global_step / w) if w > 0 else 1.0)

    def _losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x_hat, mu, logvar = self.net(x)
        recon = self.recon_fn(x_hat, x).mean()
        kl = kl_divergence(mu, logvar).mean()
        return {"loss": recon + self.kl_weight() * kl, "recon": recon, "kl": kl}

    def training_step(self, batch, batch_idx):
        losses = self._losses(batch["image"])
        if not self.guard_finite(losses, batch):
            return None
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, on_step=True, on_epoch=False)
        self.log("train/kl_weight", self.kl_weight())
        return losses["loss"]

    def validation_step(self, batch, batch_idx):
        x = batch["image"]
        losses = self._losses(x)
        mae = (self.net.reconstruct(x) - x).abs().mean() / 2  # in [0, 1] pixel units
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, sync_dist=True)
        self.log("val/recon_mae", mae, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas))

    def metric_inputs(self):
        return {**super().metric_inputs(), "recon_fn": self.net.reconstruct}

    @torch.no_grad()
    def sample_images(self, n: int, seed: int = 0) -> torch.Tensor:
        return self.net.sample(n, seed=seed)
