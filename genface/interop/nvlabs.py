"""NVlabs stylegan2-ada-pytorch network pickles -> :class:`~genface.models.stylegan2.StyleGAN2Generator`.

The ``.pkl`` is read with :func:`genface.interop.safe_pickle.load_nvlabs_pkl`, so the code
stored in it never runs; the generator's state dict (``G_ema`` by default) is renamed:

==========================================  ==================================================
NVlabs                                       genface
==========================================  ==================================================
``mapping.fc{i}``                            ``mapping.layers.{i}``
``mapping.w_avg``                            ``mapping.w_avg``
``synthesis.b4.const`` ``(C, 4, 4)``         ``synthesis.const.weight`` ``(1, C, 4, 4)``
``synthesis.b4.conv1`` / ``.torgb``          ``synthesis.conv1`` / ``synthesis.to_rgb1``
``synthesis.b{r}.conv0/conv1/torgb``         ``synthesis.blocks.{log2(r) - 3}.conv0/conv1/to_rgb``
``*.affine``                                 ``*.conv.affine``
``*.weight`` (of a layer)                    ``*.conv.weight``
``*.noise_strength`` ``()``                  ``*.noise.weight`` ``(1,)``
``*.noise_const`` ``(r, r)``                 ``*.noise.noise_const`` ``(1, 1, r, r)``
==========================================  ==================================================

FIR filter buffers (``resample_filter``) are dropped (genface builds them from ``blur_kernel``).
Class-conditional generators (``mapping.embed``) are not mapped.

The discriminator ``D`` (:func:`discriminator_from_nvlabs`; ``architecture="resnet"``, the
default, unconditional) maps onto :class:`~genface.models.stylegan2.StyleGAN2Discriminator`:
``b{R}.fromrgb`` -> ``from_rgb``; ``b{r}.conv0`` / ``.conv1`` / ``.skip`` -> ``blocks.{i}.conv0`` /
``.conv1.1`` / ``.skip.1`` with ``i = log2(R / r)``; ``b4.conv`` / ``.fc`` / ``.out`` -> ``conv`` /
``fc`` / ``out``. NVlabs scales the residual branch and the skip by ``sqrt(0.5)`` each, genface
divides their sum by ``sqrt(2)``: the same. ``conv_clamp`` (256 in NVlabs' training configs)
is not applied by genface; it changes nothing while activations stay below it.

The mapping network alone (:func:`mapping_from_nvlabs`) comes from stylegan2-ada-pytorch and
from NVlabs stylegan3 pickles (same ``mapping.fc{i}`` / ``w_avg`` layout; StyleGAN3's default
is 2 layers): a genface :class:`~genface.nn.style.MappingNetwork` with the pickle's ``num_ws``,
``w_avg_beta`` and learning-rate multiplier. StyleGAN3's alias-free synthesis network has no
genface counterpart and is not imported.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from genface.interop.rosinality import (
    discriminator_from_genface_state,
    generator_from_genface_state,
)
from genface.interop.safe_pickle import load_nvlabs_pkl, stub_state_dict

__all__ = ["nvlabs_to_genface", "stylegan2_from_nvlabs", "nvlabs_d_to_genface", "discriminator_from_nvlabs",
           "mapping_from_nvlabs"]


def _network(source, key: str):
    """The network ``key`` ("G", "G_ema", "D") of an NVlabs ``.pkl`` (restricted unpickler),
    or a KeyError naming the networks the file has."""
    nets = load_nvlabs_pkl(source)
    if nets.get(key) is None:
        raise KeyError(f"{source} has no {key!r} network; it has {sorted(k for k, v in nets.items() if v is not None)}")
    return nets[key]


def nvlabs_to_genface(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an NVlabs ``Generator`` state dict to genface ``StyleGAN2Generator`` keys."""
    if any(k.startswith("mapping.embed") for k in sd):
        raise ValueError("class-conditional NVlabs generators (mapping.embed) are not supported")
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.endswith("resample_filter"):
            continue
        m = re.fullmatch(r"mapping\.fc(\d+)\.(weight|bias)", key)
        if m:
            out[f"mapping.layers.{m[1]}.{m[2]}"] = value
            continue
        if key == "mapping.w_avg":
            out[key] = value
            continue
        if key == "synthesis.b4.const":
            out["synthesis.const.weight"] = value[None]
            continue
        m = re.fullmatch(r"synthesis\.b(\d+)\.(conv0|conv1|torgb)\.(.+)", key)
        if not m:
            raise ValueError(f"unexpected NVlabs generator tensor {key!r}")
        res, layer, rest = int(m[1]), m[2], m[3]
        if res == 4:
            prefix = "synthesis.conv1" if layer == "conv1" else "synthesis.to_rgb1"
        else:
            prefix = f"synthesis.blocks.{int(math.log2(res)) - 3}.{'to_rgb' if layer == 'torgb' else layer}"
        if rest.startswith("affine."):
            out[f"{prefix}.conv.{rest}"] = value
        elif rest == "weight":
            out[f"{prefix}.conv.weight"] = value
        elif rest == "bias":
            out[f"{prefix}.bias"] = value
        elif rest == "noise_strength":
            out[f"{prefix}.noise.weight"] = value.reshape(1)
        elif rest == "noise_const":
            out[f"{prefix}.noise.noise_const"] = value[None, None]
        else:
            raise ValueError(f"unexpected NVlabs generator tensor {key!r}")
    return out


def stylegan2_from_nvlabs(source: str | Path | dict[str, Any], key: str = "G_ema", **config: Any):
    """Build a :class:`~genface.models.stylegan2.StyleGAN2Generator` from an NVlabs network pickle.

    Args:
        source: the ``.pkl`` (loaded with the restricted unpickler), or a state dict in NVlabs' names.
        key: ``"G_ema"`` (default) or ``"G"``.
        **config: further :class:`~genface.models.stylegan2.StyleGAN2Config` fields
            (``mapping_lr_mul`` defaults to NVlabs' 0.01).
    """
    sd = source if isinstance(source, dict) else stub_state_dict(_network(source, key))
    return generator_from_genface_state(nvlabs_to_genface(sd), **{"mapping_lr_mul": 0.01, **config}).eval()


#: NVlabs DiscriminatorBlock layer -> genface _DBlock module (conv1 and skip: blur, then conv)
_D_BLOCK = {"conv0": "conv0", "conv1": "conv1.1", "skip": "skip.1"}


def nvlabs_d_to_genface(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an NVlabs ``Discriminator`` (resnet, unconditional) state dict to genface keys."""
    if any(k.startswith("mapping.") for k in sd):
        raise ValueError("class-conditional NVlabs discriminators (mapping.*) are not supported")
    if any(".fromrgb." in k and not k.startswith(f"b{_top_res(sd)}.") for k in sd):
        raise ValueError("only NVlabs' resnet discriminator (one fromrgb, at the top) is supported")
    top = _top_res(sd)
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.endswith("resample_filter"):
            continue
        m = re.fullmatch(r"b(\d+)\.(fromrgb|conv0|conv1|skip|conv|fc|out)\.(weight|bias)", key)
        if not m:
            raise ValueError(f"unexpected NVlabs discriminator tensor {key!r}")
        res, layer, kind = int(m[1]), m[2], m[3]
        if res == 4 and layer in ("conv", "fc", "out"):
            out[f"{layer}.{kind}"] = value
        elif layer == "fromrgb":
            out[f"from_rgb.{kind}"] = value
        elif res > 4 and layer in ("conv0", "conv1", "skip"):
            i = int(math.log2(top // res))
            out[f"blocks.{i}.{_D_BLOCK[layer]}.{kind}"] = value
        else:
            raise ValueError(f"unexpected NVlabs discriminator tensor {key!r}")
    return out


def _top_res(sd: dict[str, torch.Tensor]) -> int:
    return max(int(m[1]) for k in sd if (m := re.match(r"b(\d+)\.", k)))


def discriminator_from_nvlabs(source: str | Path | dict[str, Any], key: str = "D", **config: Any):
    """Build a :class:`~genface.models.stylegan2.StyleGAN2Discriminator` from an NVlabs network pickle.

    Args:
        source: the ``.pkl`` (loaded with the restricted unpickler), or a state dict in NVlabs' names.
        key: the discriminator's entry (``"D"``).
        **config: further :class:`~genface.models.stylegan2.StyleGAN2Config` fields the weights
            do not tell (``mbstd_group_size``: NVlabs' default 4 is genface's).
    """
    sd = source if isinstance(source, dict) else stub_state_dict(_network(source, key))
    return discriminator_from_genface_state(nvlabs_d_to_genface(sd), **config)


def mapping_from_nvlabs(source: str | Path, key: str = "G_ema"):
    """The mapping network of an NVlabs stylegan2-ada-pytorch or stylegan3 pickle as a genface
    :class:`~genface.nn.style.MappingNetwork` (z -> ws ``(N, num_ws, w_dim)``, with ``w_avg``).

    Args:
        source: the ``.pkl`` (loaded with the restricted unpickler; its code never runs).
        key: ``"G_ema"`` (default) or ``"G"``.
    """
    from genface.nn.style import MappingNetwork

    stub = _network(source, key).state.get("_modules", {}).get("mapping")
    if stub is None:
        raise ValueError(f"{source}: {key} has no mapping network")
    attrs = stub.state
    if int(attrs.get("c_dim", 0)):
        raise ValueError("class-conditional NVlabs mapping networks (c_dim > 0) are not supported")
    sd = stub_state_dict(stub)
    n = 1 + max(int(m[1]) for k in sd if (m := re.fullmatch(r"fc(\d+)\.weight", k)))
    fc0 = sd["fc0.weight"]
    lr_mul = float(_stub_attr(stub, "fc0", "bias_gain", 0.01))
    net = MappingNetwork(int(fc0.shape[1]), int(sd[f"fc{n - 1}.weight"].shape[0]), n,
                         hidden_dim=int(fc0.shape[0]), lr_mul=lr_mul, normalize_z=True,
                         w_avg_beta=attrs.get("w_avg_beta", 0.998), num_ws=int(attrs["num_ws"]))
    mapped = {f"layers.{k[2:]}" if k.startswith("fc") else k: v for k, v in sd.items()}
    net.load_state_dict(mapped, strict=True)
    return net.eval()


def _stub_attr(stub: Any, child: str, name: str, default: Any = None) -> Any:
    """A plain attribute (``bias_gain``, ``num_ws``, ...) of a sub-module of a stub network."""
    sub = stub.state.get("_modules", {}).get(child)
    return default if sub is None else sub.state.get(name, default)
