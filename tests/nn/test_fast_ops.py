"""Fast StyleGAN2 paths (issue 15) equal the plain ones, forward and backward, to 1e-5.

Each optimisation in ``genface/nn/fused.py`` and the ``fast_ops`` switch of
``StyleGAN2Config`` is compared with the plain layer-by-layer path on the same weights and
the same noise; the compile mode is checked for graph breaks and for recompiles on the
lazy-regularisation steps.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from genface.models.stylegan2 import (
    StyledLayer,
    StyleGAN2,
    StyleGAN2Config,
    _DownConv,
    compile_stylegan2,
)
from genface.nn.equalized import leaky_relu
from genface.nn.fused import FIRDownsampleStrided, bias_lrelu, fold_lrelu_gain
from genface.nn.resample import Blur

TINY = dict(resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256, channel_max=16)


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> None:
    """``|a - b| <= tol · max(1, max|b|)`` elementwise (relative for large sums such as bias grads)."""
    scale = max(1.0, b.abs().max().item())
    err = (a - b).abs().max().item()
    assert err <= tol * scale, f"max |diff| {err:.3e} > {tol} · {scale:.3g}"


def _leaves(*shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64).requires_grad_(True) for s in shapes]


@pytest.mark.parametrize("with_scale,with_noise,with_bias", [(True, True, True), (True, False, True),
                                                             (False, True, False), (False, False, True)])
def test_bias_lrelu_equals_plain_epilogue(with_scale, with_noise, with_bias):
    x, d, noise, strength, b = _leaves((3, 5, 6, 6), (3, 5), (3, 1, 6, 6), (1,), (5,))

    def plain(x, d, noise, strength, b):
        y = x * d[:, :, None, None] if with_scale else x
        y = y + strength.view(1, -1, 1, 1) * noise if with_noise else y
        y = y + b.view(1, -1, 1, 1) if with_bias else y
        return leaky_relu(y)

    def fast(x, d, noise, strength, b):
        return bias_lrelu(x, b if with_bias else None, d if with_scale else None,
                          strength.view(1, -1, 1, 1) * noise if with_noise else None)

    args = (x, d, noise, strength, b)
    want, got = plain(*args), fast(*args)
    _close(got, want)
    gy = torch.randn_like(want)
    g_want = torch.autograd.grad(want, args, gy, allow_unused=True)
    g_got = torch.autograd.grad(got, args, gy, allow_unused=True)
    for a, b_ in zip(g_got, g_want):
        assert (a is None) == (b_ is None)
        if a is not None:
            _close(a, b_)


def test_bias_lrelu_rejects_non_positive_gain():
    with pytest.raises(ValueError, match="gain > 0"):
        bias_lrelu(torch.zeros(1, 1, 2, 2), gain=-1.0)


def test_fold_lrelu_gain_equals_gain_after_activation():
    x, w, b = _leaves((2, 4, 7, 7), (6, 4, 3, 3), (6,))
    want = leaky_relu(F.conv2d(x, w, b, padding=1))
    wf, bf = fold_lrelu_gain(w, b)
    got = F.leaky_relu(F.conv2d(x, wf, bf, padding=1), 0.2)
    _close(got, want)
    for a, b_ in zip(torch.autograd.grad(got.sum(), (x, w, b)), torch.autograd.grad(want.sum(), (x, w, b))):
        _close(a, b_)


@pytest.mark.parametrize("size", [8, 9])
def test_strided_fir_equals_blur_then_stride(size):
    (x,) = _leaves((2, 3, size, size))
    want = Blur((1, 3, 3, 1), pad=(1, 1))(x)[:, :, ::2, ::2]
    got = FIRDownsampleStrided((1, 3, 3, 1), pad=(1, 1), factor=2)(x)
    assert got.shape == want.shape
    _close(got, want)
    gy = torch.randn_like(want)
    _close(torch.autograd.grad(got, x, gy)[0], torch.autograd.grad(want, x, gy)[0])


def test_down_conv_skip_fast_equals_plain():
    torch.manual_seed(0)
    plain = _DownConv(6, 5, 1, (1, 3, 3, 1), bias=False, activation=None, fast=False)
    fast = _DownConv(6, 5, 1, (1, 3, 3, 1), bias=False, activation=None, fast=True)
    assert list(plain.state_dict()) == list(fast.state_dict())
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(3, 6, 16, 16, requires_grad=True)
    want, got = plain(x), fast(x)
    _close(got, want)
    gy = torch.randn_like(want)
    _close(torch.autograd.grad(got, x, gy)[0], torch.autograd.grad(want, x, gy)[0])
    assert isinstance(fast[0], FIRDownsampleStrided) and isinstance(plain[0], Blur)


@pytest.mark.parametrize("up,fused", [(False, False), (True, False), (True, True), (False, True)])
def test_styled_layer_fast_equals_plain(up, fused):
    torch.manual_seed(0)
    plain = StyledLayer(6, 5, 8, 16, up=up, fused=fused, fast=False)
    fast = StyledLayer(6, 5, 8, 16, up=up, fused=fused, fast=True)
    fast.load_state_dict(plain.state_dict())
    with torch.no_grad():
        for m in (plain, fast):  # non-zero bias and noise strength so both terms are exercised
            m.bias.copy_(torch.linspace(-0.5, 0.5, 5))
            m.noise.weight.fill_(0.3)
    x = torch.randn(3, 6, 8 if up else 16, 8 if up else 16, requires_grad=True)
    w = torch.randn(3, 8, requires_grad=True)
    want, got = plain(x, w, noise_mode="const"), fast(x, w, noise_mode="const")
    _close(got, want)
    gy = torch.randn_like(want)
    params_p, params_f = list(plain.parameters()), list(fast.parameters())
    g_want = torch.autograd.grad(want, [x, w, *params_p], gy)
    g_got = torch.autograd.grad(got, [x, w, *params_f], gy)
    for a, b in zip(g_got, g_want):
        _close(a, b)


def _pair(fast_ops: bool, **kw):
    torch.manual_seed(0)
    return StyleGAN2(**TINY, fast_ops=fast_ops, **kw)


@pytest.mark.parametrize("fused", [None, True])
def test_stylegan2_fast_ops_equal_plain_forward_and_backward(fused):
    plain, fast = _pair(False, fused_modconv=fused), _pair(True, fused_modconv=fused)
    for a, b in ((plain.generator, fast.generator), (plain.discriminator, fast.discriminator)):
        assert list(a.state_dict()) == list(b.state_dict())  # importers (genface/interop) map these keys
        assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())
        b.load_state_dict(a.state_dict())
    with torch.no_grad():  # non-zero biases / noise strengths in every layer
        for net in (plain, fast):
            g = torch.Generator().manual_seed(1)
            for name, p in net.named_parameters():
                if name.endswith("bias") or name.endswith("noise.weight"):
                    p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    ws = torch.randn(4, plain.generator.num_ws, TINY["w_dim"], requires_grad=True)
    outs, grads = [], []
    for net in (plain, fast):
        img = net.generator.synthesis(ws, noise_mode="const")
        score = net.discriminator(img).sum()
        params = list(net.parameters())
        g = torch.autograd.grad(score, [ws, *params], allow_unused=True)
        outs.append((img, score))
        grads.append(g)
    _close(outs[1][0], outs[0][0])
    _close(outs[1][1], outs[0][1])
    for a, b in zip(grads[1], grads[0]):
        assert (a is None) == (b is None)
        if a is not None:
            _close(a, b)


def test_fast_ops_is_an_opt_in_config_field():
    assert StyleGAN2Config().fast_ops is False  # opt-in: no CPU speed-up measured (docs/performance.md)
    assert not StyleGAN2(**TINY).generator.synthesis.conv1.fast
    net = StyleGAN2(**TINY, fast_ops=True)
    assert net.generator.synthesis.conv1.fast and isinstance(net.discriminator.blocks[0].skip[0], FIRDownsampleStrided)


@pytest.mark.slow
def test_compile_mode_has_no_graph_breaks():
    """G's mapping and synthesis and D each trace as one graph in training mode (random noise)."""
    torch._dynamo.reset()
    net = StyleGAN2(**TINY).train()
    g, d = net.generator, net.discriminator
    z = torch.randn(4, TINY["z_dim"])
    ws = g.mapping(z)
    for name, fn, arg in (("mapping", g.mapping, z), ("synthesis", g.synthesis, ws), ("D", d, torch.randn(4, 3, 16, 16))):
        e = torch._dynamo.explain(fn)(arg)
        reasons = [b.reason.splitlines()[0] for b in e.break_reasons]
        print(f"{name}: graphs {e.graph_count}, graph breaks {e.graph_break_count}")
        assert e.graph_break_count == 0, (name, reasons)
        assert e.graph_count == 1, name
    torch._dynamo.reset()


@pytest.mark.slow
def test_compiled_training_step_and_eager_regularisers_do_not_recompile():
    """Compiled D forward/backward, then an R1 step (double backward) under the force_eager
    stance, then plain steps again: the same results as eager, and no recompilation."""
    torch._dynamo.reset()
    eager = _pair(True)
    comp = _pair(True)  # the fast path, which the GPU runs use
    compile_stylegan2(comp, backend="aot_eager")
    x = torch.randn(4, 3, 16, 16)
    # the two plain kinds of a GAN step, forward + backward through the compiled graphs:
    # G step (D's input requires grad) and D step (it does not); each compiles once
    for net in (eager, comp):
        net.zero_grad(set_to_none=True)
        net.discriminator(net.generator.synthesis(net.generator.mapping(torch.ones(4, 32)), noise_mode="const")).sum().backward()
        net.discriminator(x).sum().backward()
    for a, b in zip(eager.parameters(), comp.parameters()):
        _close(b.grad, a.grad)
    with torch._dynamo.config.patch(error_on_recompile=True):
        real = x.clone().requires_grad_(True)
        with torch.compiler.set_stance("force_eager"):
            logits = comp.discriminator(real)
            (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
            grad.square().sum().backward()  # R1's double backward
        real_e = x.clone().requires_grad_(True)
        (grad_e,) = torch.autograd.grad(eager.discriminator(real_e).sum(), real_e, create_graph=True)
        _close(grad, grad_e)
        for _ in range(2):  # back to compiled plain steps: error_on_recompile fails here if it recompiled
            comp.discriminator(x).sum().backward()
    torch._dynamo.reset()


def test_fused_epilogue_gain_identity_holds_for_negative_inputs():
    """The folding rests on lrelu(g·v) = g·lrelu(v) for g > 0: check it where v < 0 too."""
    v = torch.linspace(-3, 3, 61, dtype=torch.float64)
    assert torch.allclose(F.leaky_relu(v * math.sqrt(2), 0.2), leaky_relu(v), atol=1e-12)


def test_mixed_precision_off_is_the_fp32_path():
    torch.manual_seed(0)
    a = StyleGAN2(**TINY)
    torch.manual_seed(0)
    b = StyleGAN2(**TINY, num_fp16_res=0, conv_clamp=None)
    ws = torch.randn(2, a.generator.num_ws, TINY["w_dim"])
    assert torch.equal(a.generator.synthesis(ws, noise_mode="const"), b.generator.synthesis(ws, noise_mode="const"))
    assert all(blk.dtype == torch.float32 for blk in a.discriminator.blocks)


@pytest.mark.parametrize("fast", [False, True])
def test_mixed_precision_top_resolutions_in_bf16(fast):
    """NVlabs-style: the top ``num_fp16_res`` resolutions compute in bf16, the rest, the RGB
    skip sum and D's head in fp32; results stay close to fp32 and gradients reach fp32 weights."""
    torch.manual_seed(0)
    ref = StyleGAN2(**TINY, fast_ops=fast)
    torch.manual_seed(0)
    mixed = StyleGAN2(**TINY, fast_ops=fast, num_fp16_res=1, conv_clamp=256.0)
    mixed.load_state_dict(ref.state_dict())
    assert [b.dtype for b in mixed.generator.synthesis.blocks] == [torch.float32, torch.bfloat16]  # 8, 16 px
    assert [b.dtype for b in mixed.discriminator.blocks] == [torch.bfloat16, torch.float32]  # 16, 8 px
    seen = {}
    mixed.generator.synthesis.blocks[-1].conv1.register_forward_hook(lambda m, i, o: seen.update(g=o.dtype))
    ws = torch.randn(4, ref.generator.num_ws, TINY["w_dim"], requires_grad=True)
    img_ref = ref.generator.synthesis(ws, noise_mode="const")
    img = mixed.generator.synthesis(ws, noise_mode="const")
    assert seen["g"] == torch.bfloat16 and img.dtype == torch.float32
    assert (img - img_ref).abs().max().item() < 0.1 * max(1.0, img_ref.abs().max().item())
    score = mixed.discriminator(img)
    assert score.dtype == torch.float32 and torch.isfinite(score).all()
    score.sum().backward()
    grads = [p.grad for p in mixed.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def test_conv_clamp_bounds_every_layer_output():
    torch.manual_seed(0)
    net = StyleGAN2(**TINY, conv_clamp=0.05)
    outs = []
    for m in net.generator.synthesis.modules():
        if isinstance(m, StyledLayer):
            m.register_forward_hook(lambda mod, i, o: outs.append(o.abs().max().item()) and None)
    net.generator.synthesis(torch.randn(2, net.generator.num_ws, TINY["w_dim"]) * 10, noise_mode="const")
    assert outs and max(outs) <= 0.05 + 1e-7
    with pytest.raises(ValueError, match="fp16_dtype"):
        StyleGAN2Config(fp16_dtype="float8")
