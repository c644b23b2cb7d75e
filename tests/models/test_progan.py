"""ProGAN (arXiv 1710.10196): shapes at every stage, fade-in, paper parameter counts, API."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genface.models.progan import ProGAN, ProGANConfig, ProGANDiscriminator, ProGANGenerator
from tests.conftest import TINY_TABLE

TINY = TINY_TABLE["progan"].net  # the one TINY table (tests/conftest.py)
Z = TINY["z_dim"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("resolution", [8, 16, 32, 64])
def test_shapes_at_every_stage(resolution):
    net = ProGAN(resolution=resolution, **TINY)
    z = torch.randn(4, Z)
    stages = net.generator.num_stages
    assert stages == {8: 2, 16: 3, 32: 4, 64: 5}[resolution]
    for stage in range(stages):
        res = 4 * 2**stage
        img = net.generator(z, stage=stage, alpha=0.5)
        assert img.shape == (4, 3, res, res)
        assert net.discriminator(img, stage=stage, alpha=0.5).shape == (4, 1)
    # defaults: full resolution
    assert net.generator(z).shape == (4, 3, resolution, resolution)
    assert net.discriminator(torch.randn(4, 3, resolution, resolution)).shape == (4, 1)


@pytest.mark.parametrize("resolution", [8, 16, 32, 64])
def test_alpha_zero_equals_previous_stage_upsampled(resolution):
    g = ProGANGenerator(resolution=resolution, **TINY)
    d = ProGANDiscriminator(resolution=resolution, **TINY)
    z = torch.randn(3, Z)
    for stage in range(1, g.num_stages):
        prev = g(z, stage=stage - 1, alpha=1.0)
        faded = g(z, stage=stage, alpha=0.0)
        assert torch.allclose(faded, F.interpolate(prev, scale_factor=2, mode="nearest"), atol=1e-6)
        # D: at alpha = 0 the new block is skipped: D(x, k, 0) = D(avgpool(x), k - 1)
        x = torch.randn(4, 3, 4 * 2**stage, 4 * 2**stage)
        assert torch.allclose(d(x, stage=stage, alpha=0.0), d(F.avg_pool2d(x, 2), stage=stage - 1), atol=1e-5)


def test_alpha_one_ignores_previous_to_rgb():
    g = ProGANGenerator(resolution=16, **TINY)
    z = torch.randn(2, Z)
    before = g(z, stage=2, alpha=1.0)
    with torch.no_grad():
        g.to_rgb[1].weight.add_(1.0)
    assert torch.allclose(g(z, stage=2, alpha=1.0), before)
    assert not torch.allclose(g(z, stage=2, alpha=0.5), before)


def test_paper_channels_and_parameter_counts():
    cfg = ProGANConfig()
    assert cfg.channels() == {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
    with torch.device("meta"):
        g, d = ProGANGenerator(cfg), ProGANDiscriminator(cfg)
    # ProGAN Table 2: 23.1M trainable parameters each (final-resolution toRGB / fromRGB only)
    g_final = _count(g) - sum(_count(m) for m in g.to_rgb[:-1])
    d_final = _count(d) - sum(_count(m) for m in d.from_rgb[:-1])
    assert round(g_final / 1e6, 1) == 23.1
    assert round(d_final / 1e6, 1) == 23.1


def test_bilinear_option_changes_resampling():
    near = ProGANGenerator(resolution=16, **TINY)
    bil = ProGANGenerator(resolution=16, resample="bilinear", **TINY)
    bil.load_state_dict(near.state_dict())
    z = torch.randn(2, Z)
    assert not torch.allclose(near(z), bil(z))
    prev = bil(z, stage=1)
    assert torch.allclose(bil(z, stage=2, alpha=0.0), bil.upsample(prev), atol=1e-6)
    with pytest.raises(ValueError, match="valid"):
        ProGANGenerator(resolution=16, resample="bicubic", **TINY)


def test_pixel_norm_in_generator():
    g = ProGANGenerator(resolution=8, **TINY)
    feats = g.blocks[0](F.normalize(torch.randn(3, Z), dim=1) * Z**0.5)
    assert torch.allclose(feats.square().mean(1), torch.ones(3, 4, 4), atol=1e-3)


def test_bad_inputs_fail_loudly():
    net = ProGAN(resolution=16, **TINY)
    with pytest.raises(ValueError, match="stage"):
        net.generator(torch.randn(2, Z), stage=3)
    with pytest.raises(ValueError, match=r"\(N, 3, 8, 8\)"):
        net.discriminator(torch.randn(2, 3, 16, 16), stage=1)
    with pytest.raises(ValueError, match=rf"\(N, {Z}\)"):
        net.generator(torch.randn(2, Z + 1))
    with pytest.raises(ValueError, match="power of two"):
        ProGAN(resolution=48, **TINY)
    with pytest.raises(TypeError, match="valid fields"):
        ProGAN(resolution=16, channels=3)


def test_notebook_api():
    net = ProGAN(resolution=16, **TINY).eval()
    a, b = net.generate(3, seed=7), net.generate(3, seed=7)
    assert a.shape == (3, 3, 16, 16) and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1
    assert not torch.equal(a, net.generate(3, seed=8))
    ws = net.mapping(torch.randn(2, Z))
    assert ws.shape == (2, 1, Z) and net.synthesis(ws).shape == (2, 3, 16, 16)
    z1, z2 = torch.randn(Z), torch.randn(Z)
    frames = net.interpolate(z1, z2, steps=4)
    assert frames.shape == (4, 3, 16, 16)
    assert torch.allclose(frames[0], net.generator(z1[None]).clamp(-1, 1)[0], atol=1e-5)
    assert torch.allclose(frames[-1], net.generator(z2[None]).clamp(-1, 1)[0], atol=1e-5)
    # psi = 0 sends every latent to the origin: all images identical
    same = net.generate(3, truncation_psi=0.0)
    assert torch.allclose(same[0], same[2])
    with pytest.raises(NotImplementedError):
        net.style_mix(torch.randn(1, Z), torch.randn(1, Z), 1)
    assert net.z_dim == Z


def test_save_load_round_trip(tmp_path):
    net = ProGAN(resolution=16, resample="bilinear", **TINY)
    net.save_pretrained(tmp_path / "progan")
    again = ProGAN.from_pretrained(tmp_path / "progan")
    assert again.config == net.config
    z = torch.randn(2, Z)
    assert torch.equal(net.generator(z, stage=2, alpha=0.3), again.generator(z, stage=2, alpha=0.3))
    gen_only = ProGANGenerator.from_pretrained(net.generator.save_pretrained(tmp_path / "g"))
    assert torch.equal(gen_only(z), net.generator(z))


def test_gradients_flow():
    net = ProGAN(resolution=16, **TINY)
    z = torch.randn(4, Z)
    img = net.generator(z, stage=2, alpha=0.5)
    net.discriminator(img, stage=2, alpha=0.5).mean().backward()
    for name, p in list(net.generator.named_parameters()) + list(net.discriminator.named_parameters()):
        if name.startswith(("to_rgb.0", "from_rgb.0")):  # stage 0 heads are unused at stage 2
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
