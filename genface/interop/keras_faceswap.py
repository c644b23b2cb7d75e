"""deepfakes/faceswap ``original`` model weights (Keras ``.h5``) -> :class:`~genface.models.faceswap.FaceSwap`.

The thesis loaded "the weights directly from the official FaceSwap repo": Keras HDF5 files
of the encoder and of one decoder per identity (``encoder.h5``, ``decoder_A.h5``,
``decoder_B.h5``, or one full model file holding them as sub-models). They are read with
h5py (no TensorFlow, no Keras needed) and converted:

* **Conv2D kernels** are HWIO ``(kh, kw, in, out)``; PyTorch wants OIHW: ``transpose(3, 2, 0, 1)``
  (both frameworks compute cross-correlations: no flip).
* **Dense after Flatten**: Keras flattens channels-last ``(h, w, c)``, genface flattens
  ``(c, h, w)``; the first Dense's input columns are permuted accordingly, and so are the
  rows of the Dense whose output is reshaped to ``(4, 4, 1024)``.
* **PixelShuffler**: faceswap's layer (t-ae's Keras port) reshapes ``(h, w, c)`` to
  ``(h, w, rh, rw, oc)``: channel ``(i * rw + j) * oc + k`` goes to sub-pixel ``(i, j)`` of
  output channel ``k``; ``nn.PixelShuffle`` takes channel ``k * rh * rw + i * rw + j``. The
  output channels of the conv before each shuffle are permuted from one order to the other.
* **"same" padding** of the stride-2 convs is asymmetric in Keras (1 before, 2 after):
  the model is built with ``keras_padding=True``.

The architecture (filters, Dense width, resolution, mask head) is read from the weights'
shapes, so the full model, the "lite" widths and the 128 px variant all load.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genface.utils import require

__all__ = ["read_keras_h5", "faceswap_from_keras", "keras_pixel_shuffle_perm"]


def _decode(names) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def read_keras_h5(path: str | Path, model: str | None = None) -> list[tuple[str, list[np.ndarray]]]:
    """The weights of a Keras HDF5 file, layer by layer in the model's order.

    Reads both layouts Keras writes to ``.h5``: ``model.save`` (a ``model_weights`` group)
    and Keras 2's ``save_weights`` (layers at the root); the order is the file's
    ``layer_names`` attribute (the model's layer order), weights in ``weight_names`` order.

    Args:
        path: the ``.h5`` file.
        model: the name of a sub-model to read (e.g. ``"encoder"`` or ``"decoder_a"`` in a
            full faceswap model file); ``None`` = every layer of the file.

    Returns:
        ``[(layer_name, [array, ...]), ...]`` for the layers that have weights.
    """
    h5py = require("h5py", "interop", feature="reading Keras .h5 weights")
    out: list[tuple[str, list[np.ndarray]]] = []
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in root.attrs:
            raise ValueError(f"{path} is not a Keras HDF5 weights file (no layer_names attribute); "
                             "Keras 3 .weights.h5 / .keras files: load them in Keras and save with model.save('x.h5')")
        for name in _decode(root.attrs["layer_names"]):
            if model is not None and name != model:
                continue
            group = root[name]
            weights = [np.asarray(group[w]) for w in _decode(group.attrs.get("weight_names", []))]
            if weights:
                out.append((name, weights))
    if model is not None and not out:
        raise KeyError(f"{path} has no sub-model {model!r} with weights")
    return out


def _pairs(layers: list[tuple[str, list[np.ndarray]]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel, bias) pairs in order, from layers or from one sub-model's flat weight list."""
    flat = [w for _, ws in layers for w in ws]
    if len(flat) % 2 or any(k.ndim < 2 or b.ndim != 1 for k, b in zip(flat[::2], flat[1::2])):
        raise ValueError("expected alternating kernel/bias weights (every faceswap layer has a bias)")
    return list(zip(flat[::2], flat[1::2]))


def keras_pixel_shuffle_perm(channels: int, r: int = 2) -> torch.Tensor:
    """Index ``p`` with ``torch_channel[c] = keras_channel[p[c]]`` for a conv feeding a pixel shuffle.

    genface/PyTorch channel ``k * r * r + i * r + j`` is faceswap's ``(i * r + j) * oc + k``.
    """
    oc = channels // (r * r)
    k, i, j = torch.meshgrid(torch.arange(oc), torch.arange(r), torch.arange(r), indexing="ij")
    return ((i * r + j) * oc + k).reshape(-1)


def _conv(kernel: np.ndarray, bias: np.ndarray, perm: torch.Tensor | None = None):
    w = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).float()
    b = torch.from_numpy(np.asarray(bias)).float()
    if perm is not None:
        w, b = w[perm], b[perm]
    return w, b


def _chw_from_hwc(c: int, h: int, w: int) -> torch.Tensor:
    """Index ``p``: genface flat index ``(c, y, x)`` -> Keras flat index ``(y, x, c)``."""
    cc, yy, xx = torch.meshgrid(torch.arange(c), torch.arange(h), torch.arange(w), indexing="ij")
    return ((yy * w + xx) * c + cc).reshape(-1)


def faceswap_from_keras(encoder: str | Path, decoders: list[str | Path], *,
                        encoder_model: str | None = None, decoder_models: list[str | None] | None = None,
                        negative_slope: float = 0.1):
    """Build a :class:`~genface.models.faceswap.FaceSwap` from faceswap's Keras ``original`` weights.

    Args:
        encoder: ``encoder.h5`` (or a full model file, with ``encoder_model`` naming the sub-model).
        decoders: one file per identity, in decoder order (``[decoder_A.h5, decoder_B.h5]``);
            the same full model file may be repeated with ``decoder_models`` naming each sub-model.
        encoder_model: sub-model of ``encoder`` to read; ``None`` = the whole file.
        decoder_models: sub-model of each decoder file; ``None`` = the whole files.
        negative_slope: LeakyReLU slope (faceswap: 0.1).

    Returns:
        The model in eval mode; ``model.config.keras_padding`` is True.
    """
    from genface.models.faceswap import FaceSwap

    enc = _pairs(read_keras_h5(encoder, encoder_model))
    if len(enc) < 4:
        raise ValueError(f"{encoder}: expected conv layers, two Dense and an upscale conv, got {len(enc)} layers")
    convs, (d1k, d1b), (d2k, d2b), up = enc[:-3], enc[-3], enc[-2], enc[-1]
    enc_filters = tuple(int(k.shape[3]) for k, _ in convs)
    in_channels = int(convs[0][0].shape[2])
    c_last = enc_filters[-1]
    hw = int(round((d2k.shape[1] / c_last) ** 0.5))
    resolution = hw * 2 ** len(convs)
    dense = int(d1k.shape[1])
    decoder_models = decoder_models or [None] * len(decoders)
    decs = [_pairs(read_keras_h5(p, m)) for p, m in zip(decoders, decoder_models)]
    n_up = len(decs[0]) - 1
    learn_mask = False
    if decs[0][-1][0].shape[3] == 1 and decs[0][-2][0].shape[3] == in_channels and decs[0][-2][0].shape[0] == 5:
        learn_mask, n_up = True, len(decs[0]) - 2
    dec_filters = tuple(int(k.shape[3]) // 4 for k, _ in decs[0][:n_up])
    if int(up[0].shape[3]) // 4 != 2 * dec_filters[0]:
        raise ValueError("the encoder's upscale width is not twice the decoder's first: not a faceswap "
                         "'original' layout")
    net = FaceSwap(resolution=resolution, num_identities=len(decoders), width=1.0, dense_dim=dense,
                   in_channels=in_channels, learn_mask=learn_mask, negative_slope=negative_slope,
                   encoder_filters=enc_filters, decoder_filters=dec_filters, keras_padding=True)
    sd: dict[str, torch.Tensor] = {}
    e = net.encoder
    conv_layers = [m for m in e.convs if isinstance(m, torch.nn.Conv2d)]
    for i, (k, b) in enumerate(convs):
        idx = list(e.convs).index(conv_layers[i])
        sd[f"encoder.convs.{idx}.weight"], sd[f"encoder.convs.{idx}.bias"] = _conv(k, b)
    p_in = _chw_from_hwc(c_last, hw, hw)
    sd["encoder.dense1.weight"] = torch.from_numpy(d1k).float().T[:, p_in].contiguous()
    sd["encoder.dense1.bias"] = torch.from_numpy(d1b).float()
    sd["encoder.dense2.weight"] = torch.from_numpy(d2k).float().T[p_in].contiguous()
    sd["encoder.dense2.bias"] = torch.from_numpy(d2b).float()[p_in]
    sd["encoder.upscale.0.weight"], sd["encoder.upscale.0.bias"] = _conv(*up, keras_pixel_shuffle_perm(up[0].shape[3]))
    for d, layers in enumerate(decs):
        if len(layers) != len(decs[0]):
            raise ValueError("the decoders have different layouts")
        for i, (k, b) in enumerate(layers[:n_up]):
            sd[f"decoders.{d}.blocks.{i}.0.weight"], sd[f"decoders.{d}.blocks.{i}.0.bias"] = _conv(
                k, b, keras_pixel_shuffle_perm(k.shape[3]))
        sd[f"decoders.{d}.to_rgb.weight"], sd[f"decoders.{d}.to_rgb.bias"] = _conv(*layers[n_up])
        if learn_mask:
            sd[f"decoders.{d}.to_mask.weight"], sd[f"decoders.{d}.to_mask.bias"] = _conv(*layers[n_up + 1])
    net.load_state_dict(sd, strict=True)
    return net.eval()
