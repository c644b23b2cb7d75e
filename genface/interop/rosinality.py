"""rosinality/stylegan2-pytorch ``.pt`` checkpoints -> :class:`~genface.models.stylegan2.StyleGAN2Generator`.

rosinality's checkpoints (``train.py``, ``convert_weight.py``) are ``torch.save`` dicts with
``g``, ``g_ema`` and ``d`` state dicts (plus optimiser states and ``latent_avg`` in converted
ones); they are read with ``torch.load(weights_only=True)``. genface's StyleGAN2 generator
uses the same parametrisation (equalised weights stored divided by ``lr_mul``, modulation
biases initialised to 1, the transposed-conv + ``[1, 3, 3, 1]`` blur upsampling, one noise
weight per layer) and the same ws indexing, so the import renames keys:

=================================  ========================================
rosinality                          genface
=================================  ========================================
``style.{i}`` (``i`` >= 1)           ``mapping.layers.{i - 1}``
``input.input``                      ``synthesis.const.weight``
``conv1`` / ``to_rgb1``              ``synthesis.conv1`` / ``synthesis.to_rgb1``
``convs.{2k}``, ``convs.{2k + 1}``   ``synthesis.blocks.{k}.conv0``, ``.conv1``
``to_rgbs.{k}``                      ``synthesis.blocks.{k}.to_rgb``
``*.conv.modulation``                ``*.conv.affine``
``*.activate.bias``                  ``*.bias``
``noises.noise_{j}``                 the layers' ``noise.noise_const`` (``noise_mode="const"``)
=================================  ========================================

The modulated conv weights lose rosinality's leading batch axis ``(1, out, in, k, k)``;
ToRGB biases ``(1, 3, 1, 1)`` become ``(3,)``.

The discriminator ``d`` (:func:`discriminator_from_rosinality`) is the same residual network
as genface's :class:`~genface.models.stylegan2.StyleGAN2Discriminator` (Fig. 7c, mbstd group 4,
one feature; the same blur padding before each stride-2 conv):

====================================================  =======================================
rosinality                                             genface
====================================================  =======================================
``convs.0.0.weight`` / ``convs.0.1.bias``              ``from_rgb.weight`` / ``.bias``
``convs.{k}.conv1.0.weight`` / ``.conv1.1.bias``       ``blocks.{k - 1}.conv0.weight`` / ``.bias``
``convs.{k}.conv2.1.weight`` / ``.conv2.2.bias``       ``blocks.{k - 1}.conv1.1.weight`` / ``.bias``
``convs.{k}.skip.1.weight``                            ``blocks.{k - 1}.skip.1.weight``
``final_conv.0.weight`` / ``final_conv.1.bias``        ``conv.weight`` / ``.bias``
``final_linear.0`` / ``final_linear.1``                ``fc`` / ``out``
====================================================  =======================================
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

__all__ = ["rosinality_to_genface", "stylegan2_from_rosinality", "generator_from_genface_state",
           "rosinality_d_to_genface", "discriminator_from_rosinality", "discriminator_from_genface_state"]


def rosinality_to_genface(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a rosinality ``Generator`` state dict to genface ``StyleGAN2Generator`` keys."""
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.endswith(".kernel"):  # FIR blur kernels: genface rebuilds them from blur_kernel
            continue
        m = re.fullmatch(r"noises\.noise_(\d+)", key)
        if m:
            j = int(m[1])
            layer = "synthesis.conv1" if j == 0 else (
                f"synthesis.blocks.{(j - 1) // 2}.{'conv0' if (j - 1) % 2 == 0 else 'conv1'}")
            out[f"{layer}.noise.noise_const"] = value
            continue
        m = re.fullmatch(r"style\.(\d+)\.(weight|bias)", key)
        if m:
            out[f"mapping.layers.{int(m[1]) - 1}.{m[2]}"] = value
            continue
        new = key.replace("input.input", "synthesis.const.weight")
        new = re.sub(r"^convs\.(\d+)\.",
                     lambda mm: f"synthesis.blocks.{int(mm[1]) // 2}.conv{int(mm[1]) % 2}.", new)
        new = re.sub(r"^to_rgbs\.(\d+)\.", lambda mm: f"synthesis.blocks.{mm[1]}.to_rgb.", new)
        new = re.sub(r"^(conv1|to_rgb1)\.", r"synthesis.\1.", new)
        new = new.replace(".conv.modulation.", ".conv.affine.").replace(".activate.bias", ".bias")
        if new.endswith("conv.weight") and value.ndim == 5:
            value = value[0]
        if re.search(r"to_rgb1?\.bias$", new) and value.ndim == 4:
            value = value.reshape(-1)
        out[new] = value
    return out


def stylegan2_from_rosinality(checkpoint: str | Path | dict[str, Any], key: str = "g_ema", **config: Any):
    """Build a :class:`~genface.models.stylegan2.StyleGAN2Generator` from a rosinality checkpoint.

    Args:
        checkpoint: a ``.pt`` file (read with ``torch.load(weights_only=True)``) or its loaded dict.
        key: ``"g_ema"`` (the averaged generator, default) or ``"g"``.
        **config: :class:`~genface.models.stylegan2.StyleGAN2Config` fields the weights do not
            tell (``mapping_lr_mul``, default rosinality's 0.01; ``blur_kernel``).

    Returns:
        The generator in eval mode; ``mapping.w_avg`` is the checkpoint's ``latent_avg`` when it has one.
    """
    ckpt = checkpoint if isinstance(checkpoint, dict) else torch.load(checkpoint, map_location="cpu",
                                                                      weights_only=True)
    sd = ckpt[key] if key in ckpt else ckpt
    latent = ckpt.get("latent_avg") if isinstance(ckpt, dict) else None
    return generator_from_genface_state(rosinality_to_genface(sd), w_avg=latent,
                                        **{"mapping_lr_mul": 0.01, **config})


def generator_from_genface_state(mapped: dict[str, torch.Tensor], w_avg: torch.Tensor | None = None,
                                 **config: Any):
    """A :class:`~genface.models.stylegan2.StyleGAN2Generator` whose widths, depth and resolution
    are read from a state dict already in genface's names, with those weights loaded.

    Args:
        mapped: the state dict (genface keys).
        w_avg: the tracked average w, when the state dict has none.
        **config: further :class:`~genface.models.stylegan2.StyleGAN2Config` fields.
    """
    from genface.models.stylegan2 import StyleGAN2Generator

    mapped = dict(mapped)
    n_mlp = 1 + max(int(m[1]) for k in mapped if (m := re.match(r"mapping\.layers\.(\d+)\.", k)))
    w_dim = mapped["mapping.layers.0.weight"].shape[0]
    z_dim = mapped["mapping.layers.0.weight"].shape[1]
    last = max(int(m[1]) for k in mapped if (m := re.match(r"synthesis\.blocks\.(\d+)\.", k)))
    resolution = 4 * 2 ** (last + 1)
    c = {r: mapped[f"synthesis.blocks.{int(math.log2(r)) - 3}.conv1.bias"].numel() for r in
         (2 ** i for i in range(3, int(math.log2(resolution)) + 1))}
    c[4] = mapped["synthesis.conv1.bias"].numel()
    channel_max = max(c.values())
    # genface: channels(r) = min(channel_base // r, channel_max)
    narrow = [r * ch for r, ch in c.items() if ch < channel_max]
    channel_base = min(narrow) if narrow else channel_max * resolution
    net = StyleGAN2Generator(resolution=resolution, z_dim=z_dim, w_dim=w_dim, mapping_layers=n_mlp,
                             channel_base=channel_base, channel_max=channel_max, **config)
    if "mapping.w_avg" not in mapped:
        mapped["mapping.w_avg"] = w_avg.reshape(-1) if w_avg is not None else net.mapping.w_avg
    return _load_fitting(net, mapped, "StyleGAN2")


def rosinality_d_to_genface(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a rosinality ``Discriminator`` state dict to genface ``StyleGAN2Discriminator`` keys."""
    fixed = {"convs.0.0.weight": "from_rgb.weight", "convs.0.1.bias": "from_rgb.bias",
             "final_conv.0.weight": "conv.weight", "final_conv.1.bias": "conv.bias",
             "final_linear.0.weight": "fc.weight", "final_linear.0.bias": "fc.bias",
             "final_linear.1.weight": "out.weight", "final_linear.1.bias": "out.bias"}
    block = {"conv1.0.weight": "conv0.weight", "conv1.1.bias": "conv0.bias",
             "conv2.1.weight": "conv1.1.weight", "conv2.2.bias": "conv1.1.bias",
             "skip.1.weight": "skip.1.weight"}
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.endswith(".kernel"):  # FIR blur kernels: genface rebuilds them from blur_kernel
            continue
        if key in fixed:
            out[fixed[key]] = value
            continue
        m = re.fullmatch(r"convs\.(\d+)\.(.+)", key)
        if not m or int(m[1]) < 1 or m[2] not in block:
            raise ValueError(f"unexpected rosinality discriminator tensor {key!r}")
        out[f"blocks.{int(m[1]) - 1}.{block[m[2]]}"] = value
    return out


def discriminator_from_rosinality(checkpoint: str | Path | dict[str, Any], key: str = "d", **config: Any):
    """Build a :class:`~genface.models.stylegan2.StyleGAN2Discriminator` from a rosinality checkpoint.

    Args:
        checkpoint: a ``.pt`` file (read with ``torch.load(weights_only=True)``) or its loaded dict.
        key: the discriminator's entry (``"d"``); a bare state dict is used as it is.
        **config: :class:`~genface.models.stylegan2.StyleGAN2Config` fields the weights do not
            tell (``mbstd_group_size``: rosinality's 4 is genface's default; ``blur_kernel``).
    """
    ckpt = checkpoint if isinstance(checkpoint, dict) else torch.load(checkpoint, map_location="cpu",
                                                                      weights_only=True)
    sd = ckpt[key] if key in ckpt else ckpt
    return discriminator_from_genface_state(rosinality_d_to_genface(sd), **config)


def discriminator_from_genface_state(mapped: dict[str, torch.Tensor], **config: Any):
    """A :class:`~genface.models.stylegan2.StyleGAN2Discriminator` whose widths, resolution and
    minibatch-stddev channels are read from a state dict in genface's names, with those weights.

    Args:
        mapped: the state dict (genface keys).
        **config: further :class:`~genface.models.stylegan2.StyleGAN2Config` fields.
    """
    from genface.models.stylegan2 import StyleGAN2Discriminator

    n_blocks = 1 + max(int(m[1]) for k in mapped if (m := re.match(r"blocks\.(\d+)\.", k)))
    resolution = 2 ** (n_blocks + 2)
    c = {resolution: mapped["from_rgb.weight"].shape[0]}
    for i in range(n_blocks):  # block i: resolution / 2**i -> resolution / 2**(i + 1)
        c[resolution // 2 ** (i + 1)] = mapped[f"blocks.{i}.conv1.1.weight"].shape[0]
    channel_max = max(c.values())
    narrow = [r * ch for r, ch in c.items() if ch < channel_max]
    channel_base = min(narrow) if narrow else channel_max * resolution
    c4 = mapped["conv.weight"].shape[0]
    net = StyleGAN2Discriminator(resolution=resolution, img_channels=mapped["from_rgb.weight"].shape[1],
                                 channel_base=channel_base, channel_max=channel_max,
                                 **{"mbstd_num_channels": mapped["conv.weight"].shape[1] - c4, **config})
    return _load_fitting(net, mapped, "StyleGAN2 discriminator")


def _load_fitting(net: torch.nn.Module, mapped: dict[str, torch.Tensor], what: str) -> torch.nn.Module:
    """Load ``mapped`` into ``net`` strictly, first naming every tensor whose shape does not fit
    (a clearer error than ``load_state_dict``'s); returns ``net`` in eval mode."""
    want = {k: v.shape for k, v in net.state_dict().items()}
    bad = {k: (tuple(mapped[k].shape), tuple(s)) for k, s in want.items() if k in mapped and mapped[k].shape != s}
    if bad:
        raise ValueError(f"the weights do not fit a genface {what} of these widths: {bad}")
    net.load_state_dict(mapped, strict=True)
    return net.eval()
