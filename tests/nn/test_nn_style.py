"""Unit tests for the ProGAN/StyleGAN primitives in genface.nn (equalised LR, resampling,
minibatch stddev, pixel norm, mapping network, AdaIN, noise, modulated conv, ToRGB, latents)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from genface.nn.equalized import EqualConv2d, EqualLinear
from genface.nn.latent import lerp, mix_ws, slerp
from genface.nn.minibatch import MinibatchStdDev
from genface.nn.resample import (
    Blur,
    Downsample,
    FIRDownsample,
    FIRUpsample,
    Upsample,
    make_kernel,
    upfirdn2d,
)
from genface.nn.style import (
    AdaIN,
    ConstantInput,
    MappingNetwork,
    ModulatedConv2d,
    NoiseInjection,
    PixelNorm,
    ToRGB,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --------------------------------------------------------------------------- equalised LR
@pytest.mark.parametrize("lr_mul", [1.0, 0.01])
@pytest.mark.parametrize("gain", [1.0, math.sqrt(2)])
def test_equal_linear_runtime_scaling(lr_mul, gain):
    layer = EqualLinear(1024, 512, lr_mul=lr_mul, gain=gain, bias_init=0.5)
    # stored weights ~ N(0, 1/lr_mul^2); run-time weights ~ N(0, (gain/sqrt(fan_in))^2)
    assert layer.weight.std().item() == pytest.approx(1 / lr_mul, rel=0.02)
    assert layer.runtime_weight().std().item() == pytest.approx(gain / math.sqrt(1024), rel=0.02)
    assert layer.bias.detach() * lr_mul == pytest.approx(torch.full((512,), 0.5), abs=1e-6)
    x = torch.randn(64, 1024)
    expected = F.linear(x, layer.weight * gain / math.sqrt(1024) * lr_mul, layer.bias * lr_mul)
    assert torch.allclose(layer(x), expected, atol=1e-5)
    # unit-variance input -> output variance gain^2 (around the bias)
    assert (layer(x) - 0.5).var().item() == pytest.approx(gain**2, rel=0.1)


def test_equal_linear_lr_mul_scales_effective_step():
    """With SGD the run-time weight moves by lr · lr_mul^2 · c^2 · dL/dW_runtime (App. C of StyleGAN)."""
    torch.manual_seed(1)
    a, b = EqualLinear(16, 8, lr_mul=1.0), EqualLinear(16, 8, lr_mul=0.1)
    with torch.no_grad():
        b.weight.copy_(a.weight / 0.1)
        b.bias.copy_(a.bias / 0.1)
    x = torch.randn(4, 16)
    assert torch.allclose(a(x), b(x), atol=1e-6)
    deltas = []
    for layer in (a, b):
        before = layer.runtime_weight().detach().clone()
        layer(x).square().sum().backward()
        with torch.no_grad():
            layer.weight -= 0.1 * layer.weight.grad
        deltas.append(layer.runtime_weight().detach() - before)
    assert torch.allclose(deltas[1], deltas[0] * 0.1**2, atol=1e-7)


def test_equal_conv_runtime_scaling_and_activation():
    conv = EqualConv2d(64, 32, 3, gain=math.sqrt(2))
    assert conv.runtime_weight().std().item() == pytest.approx(math.sqrt(2) / math.sqrt(64 * 9), rel=0.05)
    x = torch.randn(2, 64, 8, 8)
    assert torch.allclose(conv(x), F.conv2d(x, conv.runtime_weight(), conv.bias, padding=1), atol=1e-5)
    act = EqualConv2d(64, 32, 3, activation="lrelu")
    y = F.conv2d(x, act.runtime_weight(), act.bias, padding=1)
    assert torch.allclose(act(x), F.leaky_relu(y, 0.2) * math.sqrt(2), atol=1e-5)
    with pytest.raises(ValueError, match="expected"):
        conv(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="valid"):
        EqualConv2d(4, 4, 3, activation="gelu")


# --------------------------------------------------------------------------- pixel norm, mbstd
def test_pixel_norm_unit_mean_square():
    x = torch.randn(4, 16, 5, 5) * 7
    y = PixelNorm()(x)
    assert torch.allclose(y.square().mean(1), torch.ones(4, 5, 5), atol=1e-4)
    z = PixelNorm()(torch.randn(8, 512) * 3)
    assert torch.allclose(z.norm(dim=1), torch.full((8,), math.sqrt(512)), rtol=1e-4)


def test_minibatch_stddev_matches_manual():
    x = torch.randn(8, 6, 4, 4)
    y = MinibatchStdDev(group_size=4, num_channels=2)(x)
    assert y.shape == (8, 8, 4, 4)
    assert torch.equal(y[:, :6], x)
    # group of sample 0 = samples 0, 2, 4, 6 (G=4, M=2); split 0 = channels 0..2
    grp = x[[0, 2, 4, 6], :3]
    manual = (grp.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    assert y[0, 6, 0, 0].item() == pytest.approx(manual.item(), rel=1e-5)
    assert torch.allclose(y[[0, 2, 4, 6], 6], y[0, 6].expand(4, 4, 4))


def test_minibatch_stddev_group_fallback_and_identical_samples():
    mb = MinibatchStdDev(group_size=4)
    assert mb.effective_group_size(6) == 3
    assert mb.effective_group_size(5) == 1
    assert mb(torch.randn(6, 4, 2, 2)).shape == (6, 5, 2, 2)
    same = torch.randn(1, 4, 2, 2).repeat(4, 1, 1, 1)
    assert mb(same)[:, 4].abs().max().item() < 1e-3
    with pytest.raises(ValueError, match="divide"):
        MinibatchStdDev(4, num_channels=3)(torch.randn(4, 4, 2, 2))


# --------------------------------------------------------------------------- resampling
def test_make_kernel_normalised():
    k = make_kernel([1, 3, 3, 1])
    assert k.shape == (4, 4) and k.sum().item() == pytest.approx(1.0)
    assert torch.allclose(k, torch.outer(torch.tensor([1, 3, 3, 1.0]), torch.tensor([1, 3, 3, 1.0])) / 64)


def test_upfirdn2d_identity_and_shapes():
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(upfirdn2d(x, torch.ones(1, 1)), x)
    k = make_kernel([1, 3, 3, 1])
    assert upfirdn2d(x, k, up=2, pad=(2, 1)).shape == (2, 3, 16, 16)
    assert upfirdn2d(x, k, down=2, pad=(1, 1)).shape == (2, 3, 4, 4)
    assert upfirdn2d(x, torch.ones(1, 1), pad=(-1, -1)).shape == (2, 3, 6, 6)


def test_fir_upsample_is_bilinear():
    """[1,3,3,1] FIR 2x upsampling = bilinear (align_corners=False) away from the border."""
    x = torch.randn(2, 3, 8, 8)
    ours = FIRUpsample([1, 3, 3, 1])(x)
    ref = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert ours.shape == ref.shape == (2, 3, 16, 16)
    assert torch.allclose(ours[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-5)


def test_fir_upsample_equals_nearest_then_121_blur():
    x = torch.randn(1, 2, 6, 6)
    near = F.interpolate(x, scale_factor=2, mode="nearest")
    blurred = upfirdn2d(near, make_kernel([1, 2, 1]), pad=1)
    assert torch.allclose(Upsample("bilinear")(x)[..., 1:-1, 1:-1], blurred[..., 1:-1, 1:-1], atol=1e-5)


def test_fir_downsample_is_antialiased_bilinear():
    x = torch.randn(2, 3, 16, 16)
    ours = FIRDownsample([1, 3, 3, 1])(x)
    ref = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False, antialias=True)
    assert ours.shape == (2, 3, 8, 8)
    assert torch.allclose(ours[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-5)


def test_progan_resamplers_and_constant_preservation():
    x = torch.randn(1, 2, 4, 4)
    assert torch.equal(Upsample("nearest")(x), x.repeat_interleave(2, 2).repeat_interleave(2, 3))
    assert torch.allclose(Downsample("nearest")(Upsample("nearest")(x)), x)
    ones = torch.ones(1, 1, 8, 8)
    assert torch.allclose(Upsample("bilinear")(ones)[..., 2:-2, 2:-2], torch.ones(1, 1, 12, 12))
    assert torch.allclose(Downsample("bilinear")(ones)[..., 1:-1, 1:-1], torch.ones(1, 1, 2, 2))
    with pytest.raises(ValueError, match="valid"):
        Upsample("bicubic")


def test_blur_keeps_shape_with_pad():
    assert Blur([1, 3, 3, 1], pad=(2, 1))(torch.randn(1, 2, 7, 7)).shape == (1, 2, 7, 7)


# --------------------------------------------------------------------------- mapping network
def test_mapping_network_param_count():
    m = MappingNetwork(512, 512, num_layers=8)
    assert sum(p.numel() for p in m.parameters()) == 2_101_248  # 8 · (512·512 + 512)


def test_mapping_lr_mul_and_shapes():
    m = MappingNetwork(32, 16, num_layers=3, hidden_dim=64, lr_mul=0.01, num_ws=5)
    assert m.layers[0].weight.std().item() == pytest.approx(100, rel=0.1)
    ws = m(torch.randn(4, 32))
    assert ws.shape == (4, 5, 16)
    assert torch.equal(ws[:, 0], ws[:, 4])
    with pytest.raises(ValueError, match=r"\(N, 32\)"):
        m(torch.randn(4, 16))


def test_truncation_psi_zero_gives_w_avg_and_cutoff():
    m = MappingNetwork(16, 16, num_layers=2, num_ws=6).eval()
    m.w_avg.normal_()
    z = torch.randn(5, 16)
    ws0 = m(z, truncation_psi=0.0)
    assert torch.allclose(ws0, m.w_avg.expand(5, 6, 16))
    full, cut = m(z), m(z, truncation_psi=0.5, truncation_cutoff=2)
    assert torch.allclose(cut[:, :2], m.w_avg + 0.5 * (full[:, :2] - m.w_avg), atol=1e-6)
    assert torch.equal(cut[:, 2:], full[:, 2:])


def test_w_avg_tracking():
    m = MappingNetwork(8, 8, num_layers=2, w_avg_beta=0.9)
    z = torch.randn(32, 8)
    m.eval()
    m(z)
    assert torch.count_nonzero(m.w_avg) == 0  # no update unless asked
    m.train()
    m(z)
    assert torch.count_nonzero(m.w_avg) == 0  # the same in training mode: the caller decides
    w = m(z, update_w_avg=True)
    assert torch.allclose(m.w_avg, 0.1 * w.mean(0), atol=1e-6)
    m(z, update_w_avg=False)
    assert torch.allclose(m.w_avg, 0.1 * w.mean(0), atol=1e-6)
    untracked = MappingNetwork(8, 8, num_layers=1, w_avg_beta=None).train()
    untracked(z, update_w_avg=True)
    assert torch.count_nonzero(untracked.w_avg) == 0


def test_mapping_zero_layers_is_normalised_z():
    m = MappingNetwork(16, 16, num_layers=0)
    assert sum(p.numel() for p in m.parameters()) == 0
    z = torch.randn(3, 16) * 4
    assert torch.allclose(m(z), z / z.square().mean(1, keepdim=True).sqrt(), atol=1e-5)
    with pytest.raises(ValueError, match="z_dim == w_dim"):
        MappingNetwork(16, 8, num_layers=0)


# --------------------------------------------------------------------------- AdaIN, noise, const
def test_adain_sets_channel_statistics():
    ada = AdaIN(4, 8)
    with torch.no_grad():
        ada.affine.weight.zero_()
        ada.affine.bias.copy_(torch.tensor([1.0, 2.0, -0.5, 0.0, 0.1, -1.0, 3.0, 0.5]))  # y_s - 1, y_b
    x = torch.randn(2, 4, 16, 16) * 5 + 3
    y = ada(x, torch.randn(2, 8))
    y_s = torch.tensor([2.0, 3.0, 0.5, 1.0])
    y_b = torch.tensor([0.1, -1.0, 3.0, 0.5])
    assert torch.allclose(y.mean((2, 3)), y_b.expand(2, 4), atol=1e-4)
    assert torch.allclose(y.std((2, 3), unbiased=False), y_s.abs().expand(2, 4), atol=1e-3)


def test_noise_injection_modes():
    noise = NoiseInjection(3, resolution=4)
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(noise(x), x)  # strengths start at zero
    with torch.no_grad():
        noise.weight.copy_(torch.tensor([1.0, 2.0, 0.0]))
    const1, const2 = noise(x, noise_mode="const"), noise(x, noise_mode="const")
    assert torch.equal(const1, const2)
    assert torch.allclose(const1[:, 1] - x[:, 1], 2 * noise.noise_const[0, 0].expand(2, 4, 4))
    assert not torch.equal(noise(x, noise_mode="random"), noise(x, noise_mode="random"))
    assert torch.equal(noise(x, noise_mode="none"), x)
    explicit = torch.randn(2, 1, 4, 4)
    assert torch.allclose(noise(x, noise=explicit)[:, 0], x[:, 0] + explicit[:, 0])
    with pytest.raises(ValueError, match="valid"):
        noise(x, noise_mode="fixed")
    with pytest.raises(ValueError, match="resolution"):
        NoiseInjection(3)(x, noise_mode="const")


def test_constant_input():
    const = ConstantInput(8, 4)
    out = const(3)
    assert out.shape == (3, 8, 4, 4) and torch.equal(out[0], out[2])


# --------------------------------------------------------------------------- modulated conv
@pytest.mark.parametrize("up,down", [(False, False), (True, False), (False, True)])
def test_modulated_conv_fused_equals_unfused_and_shapes(up, down):
    conv = ModulatedConv2d(6, 5, 3, w_dim=8, up=up, down=down)
    x, w = torch.randn(3, 6, 8, 8), torch.randn(3, 8)
    out = conv(x, w, fused=True)
    size = 16 if up else 4 if down else 8
    assert out.shape == (3, 5, size, size)
    assert torch.allclose(out, conv(x, w, fused=False), atol=1e-5)


def test_modulated_conv_matches_explicit_per_sample_weights():
    conv = ModulatedConv2d(4, 3, 3, w_dim=8)
    x, w = torch.randn(2, 4, 6, 6), torch.randn(2, 8)
    s = conv.affine(w)
    for i in range(2):
        wi = conv.weight / math.sqrt(4 * 9) * s[i][None, :, None, None]  # Eq. 1
        wi = wi / (wi.square().sum((1, 2, 3), keepdim=True) + 1e-8).sqrt()  # Eq. 3
        assert torch.allclose(conv(x, w)[i], F.conv2d(x[i:i + 1], wi, padding=1)[0], atol=1e-5)


def test_demodulation_keeps_unit_variance_and_is_style_scale_invariant():
    torch.manual_seed(3)
    conv = ModulatedConv2d(64, 64, 3, w_dim=32, demodulate=True)
    x, w = torch.randn(16, 64, 32, 32), torch.randn(16, 32)
    y = conv(x, w)
    assert y.var().item() == pytest.approx(1.0, abs=0.15)
    # demodulated output does not depend on the overall scale of the style s
    with torch.no_grad():
        conv.affine.weight.mul_(3)
        conv.affine.bias.mul_(3)
    assert torch.allclose(conv(x, w), y, atol=1e-4)
    plain = ModulatedConv2d(64, 64, 3, w_dim=32, demodulate=False)
    y0 = plain(x, w)
    with torch.no_grad():
        plain.affine.weight.mul_(3)
        plain.affine.bias.mul_(3)
    assert torch.allclose(plain(x, w), 3 * y0, atol=1e-4)


def test_to_rgb_adds_upsampled_skip():
    rgb = ToRGB(8, 16)
    x, w, skip = torch.randn(2, 8, 8, 8), torch.randn(2, 16), torch.randn(2, 3, 4, 4)
    base = rgb(x, w)
    assert base.shape == (2, 3, 8, 8)
    assert torch.allclose(rgb(x, w, skip) - base, FIRUpsample()(skip), atol=1e-6)
    assert rgb.conv.demodulate is False


def test_modulated_conv_gradients_flow():
    conv = ModulatedConv2d(4, 4, 3, w_dim=8, up=True)
    w = torch.randn(2, 8, requires_grad=True)
    conv(torch.randn(2, 4, 4, 4), w).square().mean().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
    assert conv.weight.grad.abs().sum() > 0 and conv.affine.weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------- latents
def test_slerp_and_lerp():
    a, b = torch.randn(5, 16), torch.randn(5, 16)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5)
    assert torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    u, v = F.normalize(a, dim=1), F.normalize(b, dim=1)
    mid = slerp(u, v, 0.5)
    assert torch.allclose(mid.norm(dim=1), torch.ones(5), atol=1e-5)  # stays on the sphere
    assert torch.allclose(F.cosine_similarity(mid, u), F.cosine_similarity(mid, v), atol=1e-5)
    assert torch.allclose(lerp(a, b, 0.25), a + 0.25 * (b - a))
    assert torch.allclose(slerp(a, a, 0.3), a, atol=1e-5)  # parallel: no NaN


def test_mix_ws_rows():
    ws1, ws2 = torch.zeros(2, 6, 4), torch.ones(2, 6, 4)
    mixed = mix_ws(ws1, ws2, 2)
    assert torch.equal(mixed[:, :2], ws1[:, :2]) and torch.equal(mixed[:, 2:], ws2[:, 2:])
    with pytest.raises(ValueError, match="crossover"):
        mix_ws(ws1, ws2, 7)
