"""rosinality/stylegan2-pytorch -> genface StyleGAN2 parity (issue 13).

Needs rosinality's code on this machine (never committed): set GENFACE_REF_ROSINALITY to a
checkout of rosinality/stylegan2-pytorch (the folder holding model.py). Its ``op`` package
compiles CUDA kernels at import, so the test puts a plain-PyTorch stand-in for ``op`` (written
here, CPU only) in front of it. Skipped when the variable is unset.
"""

import os
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from genface.interop.rosinality import (
    rosinality_d_to_genface,
    rosinality_to_genface,
    stylegan2_from_rosinality,
)

REF = os.environ.get("GENFACE_REF_ROSINALITY")
pytestmark = pytest.mark.skipif(not REF or not (Path(REF or ".") / "model.py").is_file(),
                                reason="set GENFACE_REF_ROSINALITY to a rosinality/stylegan2-pytorch checkout")

OP_SHIM = '''
import math
import torch
from torch import nn
from torch.nn import functional as F


def fused_leaky_relu(x, bias=None, negative_slope=0.2, scale=2 ** 0.5):
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel, bias=True, negative_slope=0.2, scale=2 ** 0.5):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel)) if bias else None
        self.negative_slope, self.scale = negative_slope, scale

    def forward(self, x):
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)


def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
    """Zero-insertion upsampling by `up`, padding (negative = crop), true convolution with
    `kernel`, keep every `down`-th sample; pad = (x0, x1) or (x0, x1, y0, y1)."""
    x0, x1, y0, y1 = (pad[0], pad[1], pad[0], pad[1]) if len(pad) == 2 else pad
    n, c, h, w = x.shape
    y = x.reshape(n * c, 1, h, 1, w, 1)
    y = F.pad(y, (0, up - 1, 0, 0, 0, up - 1)).reshape(n * c, 1, h * up, w * up)
    y = F.pad(y, (max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)))
    y = y[:, :, max(-y0, 0): y.shape[2] - max(-y1, 0), max(-x0, 0): y.shape[3] - max(-x1, 0)]
    k = torch.flip(kernel, [0, 1]).to(y)[None, None]
    y = F.conv2d(y, k)[:, :, ::down, ::down]
    return y.reshape(n, c, y.shape[2], y.shape[3])
'''

GRADFIX = '''
from torch.nn import functional as F
conv2d = F.conv2d
def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return F.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation)
'''


@pytest.fixture(scope="module")
def rosinality_model(tmp_path_factory):
    shim = tmp_path_factory.mktemp("shim")
    (shim / "op").mkdir()
    (shim / "op" / "__init__.py").write_text(textwrap.dedent(OP_SHIM) + "\nfrom . import conv2d_gradfix\n")
    (shim / "op" / "conv2d_gradfix.py").write_text(textwrap.dedent(GRADFIX))
    saved = dict(sys.modules)
    sys.path[:0] = [str(shim), REF]
    try:
        for name in [m for m in sys.modules if m == "op" or m.startswith("op.") or m == "model"]:
            del sys.modules[name]
        import model  # rosinality's

        yield model
    finally:
        sys.path.remove(str(shim))
        sys.path.remove(REF)
        for name in set(sys.modules) - set(saved):
            if name == "model" or name == "op" or name.startswith("op."):
                del sys.modules[name]


def _randomise(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias") or "noise" in name:  # zeros in a fresh model would hide mix-ups
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
        for name, b in module.named_buffers():
            if name.startswith("noises."):
                b.copy_(torch.randn(b.shape, generator=g))


@pytest.mark.parametrize("size,style_dim,n_mlp,cm", [(32, 64, 2, 2), (128, 32, 3, 1)])
def test_rosinality_generator_parity(rosinality_model, tmp_path, size, style_dim, n_mlp, cm):
    torch.manual_seed(0)
    ref = rosinality_model.Generator(size, style_dim, n_mlp, channel_multiplier=cm).eval()
    _randomise(ref, 1)
    latent_avg = torch.randn(style_dim)
    path = tmp_path / "ckpt.pt"
    torch.save({"g_ema": ref.state_dict(), "g": ref.state_dict(), "latent_avg": latent_avg}, path)
    net = stylegan2_from_rosinality(path)
    assert net.resolution == size and torch.equal(net.mapping.w_avg, latent_avg)

    z = torch.randn(3, style_dim, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want, _ = ref([z], randomize_noise=False)
        got = net.synthesis(net.mapping(z, update_w_avg=False), noise_mode="const")
        diff = (got - want).abs().max().item()
        print(f"rosinality parity size={size} cm={cm}: max|diff| = {diff:.3e}")
        assert diff < 1e-4
        # per-layer ws (style mixing) follow the same indexing
        ws = torch.randn(3, ref.n_latent, style_dim, generator=torch.Generator().manual_seed(3))
        want, _ = ref([ws], input_is_latent=True, randomize_noise=False)
        got = net.synthesis(ws, noise_mode="const")
        assert (got - want).abs().max().item() < 1e-4
        # truncation: rosinality's truncation_latent = genface's w_avg
        want, _ = ref([z], truncation=0.5, truncation_latent=latent_avg[None], randomize_noise=False)
        got = net.synthesis(net.mapping(z, truncation_psi=0.5, update_w_avg=False), noise_mode="const")
        assert (got - want).abs().max().item() < 1e-4


def test_key_mapping_covers_every_generator_tensor(rosinality_model):
    ref = rosinality_model.Generator(32, 16, 2)
    mapped = rosinality_to_genface(ref.state_dict())
    from genface.models.stylegan2 import StyleGAN2Generator

    net = StyleGAN2Generator(resolution=32, z_dim=16, w_dim=16, mapping_layers=2, channel_base=16384)
    assert set(net.state_dict()) - set(mapped) == {"mapping.w_avg"}
    assert set(mapped) <= set(net.state_dict())


@pytest.mark.parametrize("size,cm,batch", [(32, 2, 4), (64, 1, 8)])
def test_rosinality_discriminator_parity(rosinality_model, tmp_path, size, cm, batch):
    from genface.interop.rosinality import discriminator_from_rosinality

    torch.manual_seed(0)
    ref = rosinality_model.Discriminator(size, channel_multiplier=cm).eval()
    _randomise(ref, 1)
    path = tmp_path / "ckpt.pt"
    torch.save({"d": ref.state_dict(), "g_ema": {}}, path)
    net = discriminator_from_rosinality(path)
    assert net.resolution == size and set(rosinality_d_to_genface(ref.state_dict())) == set(net.state_dict())
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want, got = ref(x), net(x)
    diff = (got - want).abs().max().item()
    print(f"rosinality D parity size={size} cm={cm}: max|diff| = {diff:.3e} (scores {want.abs().max():.3f})")
    assert got.shape == want.shape == (batch, 1) and diff < 1e-4
    # the minibatch-stddev branch counts: one image changed changes its group's scores
    x2 = x.clone()
    x2[0] = x2[0].flip(-1)
    with torch.no_grad():
        assert (net(x2) - ref(x2)).abs().max().item() < 1e-4
        assert (net(x2)[1:4] - got[1:4]).abs().max() > 1e-6


def test_rosinality_d_rejects_unknown_tensors():
    with pytest.raises(ValueError, match="unexpected rosinality discriminator tensor"):
        rosinality_d_to_genface({"convs.1.conv9.0.weight": torch.zeros(1)})
