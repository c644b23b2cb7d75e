"""FaceSwap-GAN: the FaceSwap autoencoder with per-identity discriminators, a perceptual
term and (optionally) a learned mask, after shaoanlu/faceswap-GAN; the thesis' FaceSwap
"adapted also with a GAN version [that] adds to the autoencoder architecture adversarial and
perceptual losses".

The generator is the unchanged :class:`~genface.models.faceswap.FaceSwap` (shared encoder,
one decoder per identity), trained as in :class:`~genface.training.faceswap.FaceSwapModule`
(warped inputs, MAE/SSIM reconstruction, eye/mouth weights) plus, per identity ``k``::

    L_G = L_rec + adv_weight * L_adv(D_k(decoder_k(enc(warp(x_k)))))
                + perceptual_weight * |phi(decoder_k(...)) - phi(x_k)|_1
                [+ mask_reg_weight * mean(mask)]
    L_D = L_adv_D(D_k(x_k), D_k(decoder_k(...)))      (LSGAN by default)

**Discriminators.** One 70x70 PatchGAN per identity
(:class:`genface.nn.translation.PatchGANDiscriminator`, the very D of
:mod:`genface.models.cyclegan`), not the ProGAN/StyleGAN blocks: an L1 autoencoder's faults
are local (blur, lost texture), which a patch-wise critic judges directly; it is fully
convolutional (any face size, no growth schedule or minibatch-stddev to tune); and sharing it
with CycleGAN makes the swap comparison differ in the generator and objective only.

**Perceptual term** ``phi``: a frozen network available offline (VGGFace cannot be
downloaded here). ``perceptual="synth"``: genface's SyntheticFaces feature net
(:func:`genface.metrics.synth_net.get_synth_net`, trained once per resolution and cached),
for synthetic faces; ``perceptual="vgg16:/path/to/vgg16.pth"``: torchvision's VGG16
convolutional layers up to relu3_3 from a local state-dict file (e.g. torchvision's
``vgg16-397923af.pth`` copied by hand, or a ``.safetensors``), for real faces; a path to a
``.safetensors`` written by :func:`genface.metrics.synth_net.save_synth_net` loads that
net; ``"none"`` = off.

**Mask** (``mask_blend``, needs ``net.learn_mask``): as faceswap-GAN, the output is
``m * rgb + (1 - m) * input`` and ``mask_reg_weight * mean(m)`` keeps the mask from covering
the whole face; the landmark-hull mask target of FaceSwapModule still applies where
landmarks come with the batch. Swaps then need the learned mask (genface-swap ``--mask learned``).

Manual optimisation as :class:`genface.training.gan.GANModule`: the autoencoder step (not
counted) then the discriminators' step (counted), so ``global_step`` counts batches; the
discriminators and both optimisers are in the checkpoint, the RNG is restored by
:class:`~genface.training.base.GenerativeModule`: resume is exact.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genface.models.faceswap import FaceSwap
from genface.nn.blocks import dcgan_init_
from genface.nn.translation import PatchGANDiscriminator
from genface.training.faceswap import FaceSwapModule
from genface.training.gan import _uncounted
from genface.training.losses import get_gan_loss
from genface.utils import require

log = logging.getLogger(__name__)

__all__ = ["FaceSwapGANModule", "perceptual_features"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg16_relu3_3(path: str) -> Callable[[torch.Tensor], torch.Tensor]:
    vgg = require("torchvision.models.vgg", feature="perceptual=vgg16")  # the `vision` extra
    cfgs, make_layers = vgg.cfgs, vgg.make_layers

    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"perceptual=vgg16:{path}: no such file (copy torchvision's vgg16 weights there)")
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(file))
    else:
        state = torch.load(file, map_location="cpu", weights_only=True)
    state = {k.removeprefix("features."): v for k, v in state.items() if not k.startswith("classifier.")}
    features = make_layers(cfgs["D"])  # VGG16's convolutional part
    features.load_state_dict(state)
    net = features[:16].eval().requires_grad_(False)  # up to relu3_3
    mean = torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1)

    def phi(x01: torch.Tensor) -> torch.Tensor:
        net.to(x01.device)
        return net((x01 - mean.to(x01.device)) / std.to(x01.device))

    return phi


def perceptual_features(spec: str, resolution: int) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The frozen feature map ``phi(x)`` of faces ``x`` in [0, 1] named by ``spec``.

    Args:
        spec: ``"none"``; ``"synth"`` (genface's SyntheticFaces feature net for
            ``resolution``, through :func:`genface.metrics.synth_net.get_synth_net`);
            ``"vgg16:<file>"`` (VGG16 to relu3_3 from a local state dict, ImageNet
            normalisation); or the path of a synth-net ``.safetensors``.
        resolution: face size (the synth net is trained per resolution).
    """
    if spec in (None, "", "none"):
        return None
    if spec.startswith("vgg16:"):
        return _vgg16_relu3_3(spec.split(":", 1)[1])
    from genface.metrics import synth_net

    if spec == "synth":
        net = synth_net.get_synth_net(resolution)
    elif Path(spec).expanduser().is_file():
        net = synth_net.load_synth_net(Path(spec).expanduser())
    else:
        raise ValueError(f"unknown perceptual network {spec!r}: use 'none', 'synth', 'vgg16:<file>' or the "
                         "path of a synth-net .safetensors")

    def phi(x01: torch.Tensor) -> torch.Tensor:
        net.to(x01.device)
        return net.features(x01 * 2 - 1)

    return phi


class FaceSwapGANModule(FaceSwapModule):
    """FaceSwap + per-identity PatchGAN discriminators + a perceptual term (+ the mask).

    Every argument of :class:`~genface.training.faceswap.FaceSwapModule` applies (``lr`` is
    the autoencoder's); the new ones:

    Args:
        net: the FaceSwap network (``learn_mask=True`` for ``mask_blend``).
        gan_loss: adversarial loss by name (:mod:`genface.training.losses`): "lsgan"
            (faceswap-GAN's least squares), "non_saturating", "hinge".
        adv_weight: weight of the decoders' adversarial loss beside the reconstruction
            loss; 0 = no adversarial term (the discriminators still train). Measured at
            32 px: with 0.05 its gradient on the autoencoder is ~0.1-0.2x the MAE's once
            the autoencoder reconstructs, but ~4x at initialisation (hence ``ramp_steps``).
        adv_on_swaps: also judge the swaps (A's code decoded by B and vice versa) with the
            target identity's discriminator: the only signal on swaps, which have no
            reconstruction target. False = decoded reconstructions only (faceswap-GAN).
        perceptual: the frozen feature network, see :func:`perceptual_features`
            ("synth", "vgg16:<file>", a synth-net file, or "none").
        perceptual_weight: weight of the L1 distance of features; 0 = off. The
            SyntheticFaces features are steep: at 32 px a weight of 1 gives ~45x the MAE's
            gradient on a trained autoencoder, so the default is 0.01.
        ramp_steps: the adversarial and perceptual weights grow linearly from 0 over this
            many steps, so that the autoencoder learns to reconstruct before the critic
            steers it (a weight of 0.1 from step 0 kept the 1/8-width model from learning
            at all in 200 steps); 0 = full weights from the start.
        mask_blend: output ``m * rgb + (1 - m) * input`` with the learned mask ``m``.
        mask_reg_weight: weight of ``mean(m)``, which keeps the mask from covering
            everything (used with ``mask_blend``).
        lr_d: discriminators' Adam learning rate (betas as ``betas``).
        d_ndf: PatchGAN width (filters of its first layer).
        d_layers: PatchGAN stride-2 layers (3 = 70x70 patches; 2 = 34x34, for 32 px faces).
        d_norm: PatchGAN normalisation ("instance", "batch", "none").
        **faceswap: the other :class:`FaceSwapModule` arguments.
    """

    def __init__(self, net: FaceSwap, gan_loss: str = "lsgan", adv_weight: float = 0.05,
                 adv_on_swaps: bool = False, perceptual: str = "synth", perceptual_weight: float = 0.01,
                 ramp_steps: int = 0,
                 mask_blend: bool = False, mask_reg_weight: float = 0.01, lr_d: float = 2e-4,
                 d_ndf: int = 64, d_layers: int = 3, d_norm: str = "instance", **faceswap: Any):
        super().__init__(net, **faceswap)
        self.save_hyperparameters(ignore=["net"])
        self.automatic_optimization = False
        if mask_blend and not net.has_mask:
            raise ValueError("mask_blend needs a FaceSwap with learn_mask=True")
        self.d_loss_fn, self.g_loss_fn = get_gan_loss(gan_loss)
        self.discriminators = nn.ModuleList(
            PatchGANDiscriminator(net.config.in_channels, d_ndf, d_layers, d_norm)
            for _ in range(net.config.num_identities))
        dcgan_init_(self.discriminators)  # N(0, 0.02), as pix2pix/CycleGAN
        self._phi: Callable | None = None  # the perceptual network, loaded at the first step

    def configure_optimizers(self):
        hp = self.hparams
        opt_ae = super().configure_optimizers()
        opt_d = torch.optim.Adam(self.discriminators.parameters(), lr=hp.lr_d, betas=tuple(hp.betas))
        return [opt_ae, opt_d]

    def _perceptual(self) -> Callable | None:
        if self._phi is None and self.hparams.perceptual_weight and self.hparams.perceptual not in ("", "none"):
            # building the network draws initial weights: keep the training RNG out of it, or a
            # resumed run (which loads it at a later step) would draw different augmentations
            with torch.random.fork_rng(devices=[]):
                self._phi = perceptual_features(self.hparams.perceptual, self.net.config.resolution)
        return self._phi

    def _d(self, identity: int, x01: torch.Tensor) -> torch.Tensor:
        return self.discriminators[identity](x01 * 2 - 1).flatten(1)

    def training_step(self, batch: Mapping, batch_idx: int) -> None:
        self._check_pairs(batch)
        hp, net = self.hparams, self.net
        opt_ae, opt_d = self.optimizers()
        ia, ib = self.identities
        sides = {"a": (ia, *self._prepare(batch, "a")), "b": (ib, *self._prepare(batch, "b"))}
        n_a = len(sides["a"][1])
        z = net.encode(torch.cat([sides["a"][1], sides["b"][1]]))
        codes = {"a": z[:n_a], "b": z[n_a:]}

        # -- autoencoder (generator) step ------------------------------------------------
        self.discriminators.requires_grad_(False)
        phi = self._perceptual()
        ramp = min(1.0, self.global_step / hp.ramp_steps) if hp.ramp_steps else 1.0
        adv_w, perc_w = ramp * hp.adv_weight, ramp * hp.perceptual_weight
        losses, fakes = {}, {}
        rec_total = 0.0
        for s, (k, inp, tgt, w, m_t) in sides.items():
            pred, mask = net.decode(codes[s], k, return_mask=True)
            if hp.mask_blend:
                pred = mask * pred + (1 - mask) * inp
                losses[f"mask_reg_{s}"] = hp.mask_reg_weight * mask.mean()
            rec, parts = self._side_loss(pred, mask, tgt, w, m_t)
            losses[f"rec_{s}"] = rec
            rec_total = rec_total + rec
            losses[f"g_adv_{s}"] = adv_w * self.g_loss_fn(self._d(k, pred))
            if phi is not None and hp.perceptual_weight:
                losses[f"perceptual_{s}"] = perc_w * F.l1_loss(phi(pred), phi(tgt))
            fakes[k] = [pred.detach()]
        if hp.adv_on_swaps:
            for s, other in (("a", "b"), ("b", "a")):
                k_to = sides[other][0]
                swap = net.decode(codes[s], k_to)
                losses[f"g_adv_swap_{s}"] = adv_w * self.g_loss_fn(self._d(k_to, swap))
                fakes[k_to].append(swap.detach())
        loss = sum(losses.values())
        opt_ae.zero_grad(set_to_none=True)
        ok = self.guard_finite({"loss": loss, **losses}, batch)
        if ok:
            self.manual_backward(loss)
        with _uncounted(opt_ae):
            opt_ae.step()
        self.discriminators.requires_grad_(True)

        # -- discriminator step: real targets against the decoded faces ------------------
        d_losses = {}
        for s, (k, _inp, tgt, _w, _m) in sides.items():
            fake = torch.cat(fakes[k])
            d_losses[f"d_{s}"] = self.d_loss_fn(self._d(k, tgt), self._d(k, fake))
        d_loss = sum(d_losses.values())
        opt_d.zero_grad(set_to_none=True)
        if self.guard_finite({"d_loss": d_loss, **d_losses}, batch):
            self.manual_backward(d_loss)
        opt_d.step()  # counted: global_step = batches

        if self._held_faces is None:
            self._held_faces = batch["image_a"][: hp.preview_samples].detach().clone()
        bs = 2 * n_a
        log_values = {f"train/{k}": v.detach() for k, v in {**losses, **d_losses}.items()}
        log_values.update({"train/loss": loss.detach(), "train/rec": rec_total.detach(), "train/d_loss": d_loss.detach()})
        self.log_dict(log_values, on_step=True, on_epoch=False, batch_size=bs)
        self.log("loss", loss.detach(), prog_bar=True, logger=False, batch_size=bs)

    def metric_inputs(self) -> dict[str, Any]:
        """FaceSwap's ``recon_fn`` plus ``swap_fn(x, target)`` (faces in [-1, 1] swapped into
        identity ``target`` with its decoder), the ``"swapper"`` need of :mod:`genface.metrics`."""
        inputs = super().metric_inputs()

        @torch.no_grad()
        def swap_fn(x: torch.Tensor, target: int) -> torch.Tensor:
            was = self.net.training
            self.net.eval()
            try:
                return self.net.swap(self._to01(x, "x").to(self.device), to=int(target)) * 2 - 1
            finally:
                self.net.train(was)

        inputs.setdefault("swap_fn", swap_fn)
        return inputs
