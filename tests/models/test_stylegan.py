"""StyleGAN (arXiv 1812.04948) and StyleGAN2 (arXiv 1912.04958) networks: shapes, ablation
switches, truncation, style mixing, noise modes, fade-in, parameter parity, save/load, gradients."""

from __future__ import annotations

import pytest
import torch

from genface.models.progan import ProGAN
from genface.models.stylegan import (
    ABLATION_CONFIGS,
    ABLATION_STYLE_MIXING,
    StyleGAN,
    StyleGANConfig,
    StyleGANDiscriminator,
    StyleGANGenerator,
)
from genface.models.stylegan2 import StyleGAN2, StyleGAN2Discriminator, StyleGAN2Generator
from genface.nn.style import AdaIN, ConstantInput, NoiseInjection
from tests.conftest import TINY_TABLE

# the one TINY table (tests/conftest.py); z_dim == w_dim in both rows
TINY = TINY_TABLE["stylegan"].net
TINY2 = TINY_TABLE["stylegan2"].net
Z = TINY["z_dim"]
assert TINY["w_dim"] == TINY2["z_dim"] == TINY2["w_dim"] == Z


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _nonzero_noise(gen):
    with torch.no_grad():
        for m in gen.modules():
            if isinstance(m, NoiseInjection):
                m.weight.fill_(0.5)


# =========================================================================== StyleGAN
@pytest.mark.parametrize("resolution", [8, 16, 32, 64])
def test_stylegan_shapes_at_every_stage(resolution):
    net = StyleGAN(resolution=resolution, **TINY)
    g, z = net.generator, torch.randn(4, Z)
    assert g.num_ws == 2 * g.num_stages
    for stage in range(g.num_stages):
        res = 4 * 2**stage
        img = g(z, stage=stage, alpha=0.5)
        assert img.shape == (4, 3, res, res)
        assert net.discriminator(img, stage=stage, alpha=0.5).shape == (4, 1)
    assert g(z).shape == (4, 3, resolution, resolution)
    assert net.discriminator(torch.randn(4, 3, resolution, resolution)).shape == (4, 1)
    assert g.mapping(z).shape == (4, g.num_ws, Z)


@pytest.mark.parametrize("resolution", [8, 16, 32, 64])
def test_stylegan_alpha_zero_equals_previous_stage_upsampled(resolution):
    g = StyleGANGenerator(resolution=resolution, **TINY).eval()
    _nonzero_noise(g)
    ws = g.mapping(torch.randn(2, Z))
    for stage in range(1, g.synthesis.num_stages):
        prev = g.synthesis(ws, stage=stage - 1, noise_mode="const")
        faded = g.synthesis(ws, stage=stage, alpha=0.0, noise_mode="const")
        assert torch.allclose(faded, g.synthesis.upsample(prev), atol=1e-5)


def test_stylegan_default_parameter_count():
    with torch.device("meta"):
        g = StyleGANGenerator()
    assert _count(g.mapping) == 2_101_248
    # StyleGAN §2: "26.2M" trainable parameters in the style-based generator (1024x1024)
    final = _count(g) - sum(_count(m) for m in g.synthesis.to_rgb[:-1])
    assert round(final / 1e6, 1) == 26.2
    assert g.num_ws == 18


def test_ablation_switches_real_components():
    def kinds(name):
        g = StyleGAN.ablation(name, resolution=16, **{k: v for k, v in TINY.items() if k != "mapping_layers"}).generator
        mods = list(g.modules())
        return dict(
            mapping=len(g.mapping.layers),
            adain=any(isinstance(m, AdaIN) for m in mods),
            const=any(isinstance(m, ConstantInput) for m in mods),
            noise=any(isinstance(m, NoiseInjection) for m in mods),
            resample=g.synthesis.upsample.mode,
            mixing=ABLATION_STYLE_MIXING[name],  # a training knob (objective.style_mixing_prob)
        )

    a, b, c, d, e, f = (kinds(k) for k in "ABCDEF")
    assert a == dict(mapping=0, adain=False, const=False, noise=False, resample="nearest", mixing=0.0)
    assert b == {**a, "resample": "bilinear"}
    assert c == {**b, "mapping": 8, "adain": True}
    assert d == {**c, "const": True}
    assert e == {**d, "noise": True}
    assert f == {**e, "mixing": 0.9}
    assert set(ABLATION_CONFIGS) == set("ABCDEF")
    with pytest.raises(ValueError, match="valid"):
        StyleGAN.ablation("G")


def _progan_name(name: str) -> str:
    """ProGAN parameter name -> the corresponding StyleGAN config-A name."""
    parts = name.split(".")
    if parts[0] == "to_rgb":
        return "synthesis." + name
    k, rest = parts[1], ".".join(parts[2:])
    table = {"dense.weight": "0.dense.weight", "bias": "0.bias", "conv.weight": "1.conv.weight",
             "conv.bias": "1.bias", "conv0.weight": "0.conv.weight", "conv0.bias": "0.bias",
             "conv1.weight": "1.conv.weight", "conv1.bias": "1.bias"}
    return f"synthesis.blocks.{k}.{table[rest]}"


@pytest.mark.parametrize("resample", ["nearest", "bilinear"])
def test_config_a_is_progan(resample):
    """StyleGAN with every component off (configs A/B) is ProGAN: same parameters, same outputs."""
    sizes = dict(resolution=16, z_dim=Z, fmap_base=TINY["fmap_base"], fmap_max=TINY["fmap_max"], resample=resample)
    name = "A" if resample == "nearest" else "B"
    a = StyleGAN.ablation(name, w_dim=Z, **sizes)
    p = ProGAN(**sizes)
    assert _count(a.generator) == _count(p.generator)
    assert _count(a.discriminator) == _count(p.discriminator)
    a_params = dict(a.generator.named_parameters())
    with torch.no_grad():
        for n, t in p.generator.named_parameters():
            a_params[_progan_name(n)].copy_(t)
    a.discriminator.load_state_dict(p.discriminator.state_dict())
    z = torch.randn(3, Z)
    for stage, alpha in [(0, 1.0), (1, 0.3), (2, 1.0)]:
        img = p.generator(z, stage=stage, alpha=alpha)
        assert torch.allclose(a.generator(z, stage=stage, alpha=alpha, noise_mode="none"), img, atol=1e-5)
        assert torch.allclose(a.discriminator(img, stage=stage, alpha=alpha),
                              p.discriminator(img, stage=stage, alpha=alpha), atol=1e-5)


@pytest.mark.parametrize("cls,kw", [(StyleGANGenerator, TINY), (StyleGAN2Generator, TINY2)])
def test_truncation_psi_zero_maps_to_w_avg(cls, kw):
    g = cls(resolution=16, **kw).eval()
    with torch.no_grad():
        g.mapping.w_avg.normal_()
    ws = g.mapping(torch.randn(5, Z), truncation_psi=0.0)
    assert torch.allclose(ws, g.mapping.w_avg.expand(5, g.num_ws, Z))
    imgs = g.generate(3, truncation_psi=0.0, noise_mode="const")
    assert torch.allclose(imgs[0], imgs[1], atol=1e-6) and torch.allclose(imgs[0], imgs[2], atol=1e-6)
    cut = g.mapping(torch.randn(2, Z), truncation_psi=0.0, truncation_cutoff=2)
    assert torch.allclose(cut[:, :2], g.mapping.w_avg.expand(2, 2, Z))
    assert not torch.allclose(cut[:, 2:], g.mapping.w_avg.expand(2, g.num_ws - 2, Z))


@pytest.mark.parametrize("cls,kw", [(StyleGANGenerator, TINY), (StyleGAN2Generator, TINY2)])
def test_style_mix_feeds_rows(cls, kw):
    g = cls(resolution=16, **kw).eval()
    z1, z2 = torch.randn(2, Z), torch.randn(2, Z)
    for crossover in (0, 3, g.num_ws):
        img, ws = g.style_mix(z1, z2, crossover, return_ws=True)
        w1, w2 = g.mapping(z1), g.mapping(z2)
        assert torch.equal(ws[:, :crossover], w1[:, :crossover])
        assert torch.equal(ws[:, crossover:], w2[:, crossover:])
        assert img.shape == (2, 3, 16, 16)
    # crossover = num_ws is z1's image, 0 is z2's
    assert torch.allclose(g.style_mix(z1, z2, g.num_ws), g.synthesis(g.mapping(z1), noise_mode="const").clamp(-1, 1))
    assert torch.allclose(g.style_mix(z1, z2, 0), g.synthesis(g.mapping(z2), noise_mode="const").clamp(-1, 1))


@pytest.mark.parametrize("cls,kw", [(StyleGANGenerator, TINY), (StyleGAN2Generator, TINY2)])
def test_noise_modes(cls, kw):
    g = cls(resolution=16, **kw).eval()
    _nonzero_noise(g)
    ws = g.mapping(torch.randn(2, Z))
    assert torch.equal(g.synthesis(ws, noise_mode="const"), g.synthesis(ws, noise_mode="const"))
    assert torch.equal(g.synthesis(ws, noise_mode="none"), g.synthesis(ws, noise_mode="none"))
    assert not torch.allclose(g.synthesis(ws, noise_mode="random"), g.synthesis(ws, noise_mode="random"))
    assert not torch.allclose(g.synthesis(ws, noise_mode="const"), g.synthesis(ws, noise_mode="none"))


@pytest.mark.parametrize("cls,kw", [(StyleGANGenerator, TINY), (StyleGAN2Generator, TINY2)])
def test_generate_and_interpolate(cls, kw):
    g = cls(resolution=16, **kw).eval()
    _nonzero_noise(g)
    a, b = g.generate(3, seed=5), g.generate(3, seed=5)
    assert a.shape == (3, 3, 16, 16) and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1
    assert not torch.equal(a, g.generate(3, seed=6))
    z1, z2 = torch.randn(Z), torch.randn(Z)
    for space in ("z", "w"):
        frames = g.interpolate(z1, z2, steps=5, space=space)
        assert frames.shape == (5, 3, 16, 16)
        assert torch.allclose(frames[0], g(z1[None], noise_mode="const").clamp(-1, 1)[0], atol=1e-5)
        assert torch.allclose(frames[-1], g(z2[None], noise_mode="const").clamp(-1, 1)[0], atol=1e-5)
    with pytest.raises(ValueError, match="valid"):
        g.interpolate(z1, z2, steps=3, space="s")


@pytest.mark.parametrize("cls,kw", [(StyleGANGenerator, TINY), (StyleGAN2Generator, TINY2)])
def test_w_avg_tracked_only_when_asked(cls, kw):
    """``update_w_avg`` (NVlabs' ``update_emas``) decides, not the train/eval mode."""
    g = cls(resolution=8, **kw)
    g.eval()
    g(torch.randn(4, Z))
    g.generate(2)
    assert torch.count_nonzero(g.mapping.w_avg) == 0
    g.train()
    g(torch.randn(4, Z))
    assert torch.count_nonzero(g.mapping.w_avg) == 0
    g.eval()
    g(torch.randn(4, Z), update_w_avg=True)
    assert torch.count_nonzero(g.mapping.w_avg) > 0


@pytest.mark.parametrize("cls,kw", [(StyleGANGenerator, TINY), (StyleGAN2Generator, TINY2)])
def test_mixing_regularization(cls, kw):
    g = cls(resolution=16, **kw)
    z = torch.randn(3, Z)
    ws = g.mapping(z, update_w_avg=False)
    mixed = g.mixing_regularization(z, ws, mixing_prob=1.0)
    differs = [(not torch.equal(mixed[:, i], ws[:, i])) for i in range(g.num_ws)]
    k = differs.index(True)
    assert 1 <= k < g.num_ws and all(differs[k:]) and not any(differs[:k])
    assert mixed[:, k:].unique(dim=1).shape[1] == 1  # one second latent from the crossover on
    assert torch.equal(g.mixing_regularization(z, ws, mixing_prob=0.0), ws)


@pytest.mark.parametrize("cls,kw", [(StyleGAN, TINY), (StyleGAN2, TINY2)])
def test_save_load_round_trip(cls, kw, tmp_path):
    net = cls(resolution=16, **kw)
    _nonzero_noise(net.generator)
    with torch.no_grad():
        net.generator.mapping.w_avg.normal_()
    net.save_pretrained(tmp_path / "net")
    again = cls.from_pretrained(tmp_path / "net")
    assert again.config == net.config
    z = torch.randn(2, Z)
    kw_g = dict(truncation_psi=0.7, noise_mode="const")
    assert torch.equal(net.eval()(z, **kw_g), again.eval()(z, **kw_g))
    x = torch.randn(4, 3, 16, 16)
    assert torch.equal(net.discriminator(x), again.discriminator(x))


@pytest.mark.parametrize("cls,kw", [(StyleGAN, TINY), (StyleGAN2, TINY2)])
def test_gradients_flow(cls, kw):
    net = cls(resolution=16, **kw).train()
    img = net.generator(torch.randn(4, Z), mixing_prob=0.0)
    net.discriminator(img).mean().backward()
    for name, p in list(net.generator.named_parameters()) + list(net.discriminator.named_parameters()):
        if name.startswith(("synthesis.to_rgb.0", "synthesis.to_rgb.1", "from_rgb.0", "from_rgb.1")) and cls is StyleGAN:
            continue  # earlier-stage heads are unused at the final stage with alpha = 1
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_stylegan_bad_inputs_fail_loudly():
    g = StyleGANGenerator(resolution=16, **TINY)
    with pytest.raises(ValueError, match="ws of shape"):
        g.synthesis(torch.randn(2, 3, 32))
    with pytest.raises(ValueError, match="stage"):
        g(torch.randn(2, Z), stage=5)
    with pytest.raises(ValueError, match="valid"):
        StyleGANConfig(resample="area")
    d = StyleGANDiscriminator(resolution=16, **TINY)
    with pytest.raises(ValueError, match=r"\(N, 3, 16, 16\)"):
        d(torch.randn(2, 3, 8, 8))


# =========================================================================== StyleGAN2
@pytest.mark.parametrize("resolution", [8, 16, 32, 64])
def test_stylegan2_shapes(resolution):
    net = StyleGAN2(resolution=resolution, **TINY2)
    z = torch.randn(4, Z)
    img = net.generator(z)
    assert img.shape == (4, 3, resolution, resolution)
    assert net.generator.num_ws == {8: 4, 16: 6, 32: 8, 64: 10}[resolution]
    assert net.discriminator(img).shape == (4, 1)
    assert net(z, noise_mode="none").shape == img.shape
    with pytest.raises(ValueError, match="StyleGAN2Discriminator expects"):
        net.discriminator(torch.randn(4, 3, resolution // 2, resolution // 2))


def test_stylegan2_parameter_parity_with_stylegan2_ada():
    """Counts printed by stylegan2-ada-pytorch's train.py for 1024x1024, cbase 32768, cmax 512:
    synthesis 28,268,812 (G total 28,794,124 with a 2-layer mapping), D 29,012,513."""
    with torch.device("meta"):
        g, d = StyleGAN2Generator(), StyleGAN2Discriminator()
    assert _count(g.synthesis) == 28_268_812
    assert _count(d) == 29_012_513
    assert _count(g.mapping) == 2_101_248
    assert _count(g) == 30_370_060
    assert g.num_ws == 18


def test_stylegan2_fused_equals_unfused():
    g = StyleGAN2Generator(resolution=16, fused_modconv=True, **TINY2)
    _nonzero_noise(g)
    ws = g.mapping(torch.randn(3, Z), update_w_avg=False)
    fused = g.synthesis(ws, noise_mode="const")
    unfused = StyleGAN2Generator(resolution=16, fused_modconv=False, **TINY2)
    unfused.load_state_dict(g.state_dict())
    assert torch.allclose(unfused.synthesis(ws, noise_mode="const"), fused, atol=1e-5)
    auto = StyleGAN2Generator(resolution=16, **TINY2)  # None: unfused in training, fused in eval
    auto.load_state_dict(g.state_dict())
    assert torch.allclose(auto.train().synthesis(ws, noise_mode="const"), fused, atol=1e-5)
    assert torch.allclose(auto.eval().synthesis(ws, noise_mode="const"), fused, atol=1e-5)


def test_stylegan2_noise_and_bias_outside_style_block():
    """Fig. 2c: the demodulated conv output has no bias; noise and bias come after it."""
    g = StyleGAN2Generator(resolution=8, **TINY2)
    layer = g.synthesis.conv1
    x, w = torch.randn(2, layer.conv.in_channels, 4, 4), torch.randn(2, Z)
    with torch.no_grad():
        layer.bias.fill_(0.3)
    out = layer(x, w, noise_mode="none")
    expected = torch.nn.functional.leaky_relu(layer.conv(x, w) + 0.3, 0.2) * 2**0.5
    assert torch.allclose(out, expected, atol=1e-6)
    assert layer.noise.weight.numel() == 1  # one strength per layer in StyleGAN2
