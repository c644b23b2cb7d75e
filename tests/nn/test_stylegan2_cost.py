"""StyleGAN2's arithmetic, counted (issue 15): the resampling convolutions cost what a 3x3 conv at
the LOW resolution costs, and a GAN training step runs exactly the expected convolutions, none
recomputed (docs/performance.md, "Where the time goes").

Counted with a dispatch mode over ``aten.convolution`` / ``aten.convolution_backward``: MACs of
full convolutions (groups == 1) and of the depthwise FIR filters apart.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from genface.models.stylegan2 import StyleGAN2, _DownConv
from genface.nn.style import ModulatedConv2d
from genface.training.stylegan import StyleGAN2Module

aten = torch.ops.aten


class ConvCounter(TorchDispatchMode):
    """Calls and multiply-accumulates of convolutions, forward and backward, by kind."""

    def __init__(self):
        super().__init__()
        self.calls = {"conv": 0, "fir": 0, "conv_backward": 0, "fir_backward": 0}
        self.macs = dict.fromkeys(self.calls, 0)

    def _add(self, kind: str, macs: int) -> None:
        self.calls[kind] += 1
        self.macs[kind] += macs

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is aten.convolution.default:
            x, w, transposed, groups = args[0], args[1], args[6], args[8]
            per_out = w.shape[1] * w.shape[2] * w.shape[3]
            macs = x.numel() * per_out if transposed else out.numel() * per_out
            self._add("fir" if groups > 1 else "conv", macs)
        elif func is aten.convolution_backward.default:
            grad_out, x, w, transposed, groups, mask = args[0], args[1], args[2], args[7], args[9], args[10]
            per_out = w.shape[1] * w.shape[2] * w.shape[3]
            macs = (x.numel() if transposed else grad_out.numel()) * per_out
            self._add("fir_backward" if groups > 1 else "conv_backward", macs * (int(mask[0]) + int(mask[1])))
        return out


def test_upsampling_conv_runs_at_the_low_resolution():
    """The up layer is a stride-2 transposed 3x3 conv of the H x H input: 9·Cin·Cout MACs per
    INPUT pixel (a 3x3 conv after zero insertion or interpolation would cost 4x that)."""
    c, h = 8, 8
    conv = ModulatedConv2d(c, c, 3, w_dim=4, up=True, fused=False)
    with ConvCounter() as n, torch.no_grad():
        y = conv(torch.randn(1, c, h, h), torch.randn(1, 4))
    assert y.shape == (1, c, 2 * h, 2 * h)
    assert n.calls["conv"] == 1 and n.macs["conv"] == h * h * 9 * c * c
    assert n.calls["fir"] == 1 and n.macs["fir"] == c * (2 * h) ** 2 * 16  # 4x4 taps per output pixel


def test_downsampling_conv_is_blur_then_stride_2():
    """D's down conv (NVlabs: FIR blur, then a stride-2 3x3): 9·Cin·Cout MACs per OUTPUT pixel."""
    cin, cout, h = 4, 8, 16
    down = _DownConv(cin, cout, 3, (1, 3, 3, 1))
    with ConvCounter() as n, torch.no_grad():
        y = down(torch.randn(1, cin, h, h))
    assert y.shape == (1, cout, h // 2, h // 2)
    assert n.calls["conv"] == 1 and n.macs["conv"] == (h // 2) ** 2 * 9 * cin * cout
    assert n.calls["fir"] == 1


def _count(fn) -> ConvCounter:
    with ConvCounter() as n:
        fn()
    return n


def test_a_training_step_runs_each_convolution_once():
    """One plain StyleGAN2 step (D step, then G step) costs exactly G's forward twice, D's forward
    three times (real, fake, the G step's fake) and the backward passes it needs: the D step
    builds no graph through G, the G step computes no weight gradients of D, nothing is recomputed.
    An R1 step adds no D forward (R1 is taken on the D step's own real pass)."""
    torch.manual_seed(0)
    net = StyleGAN2(resolution=16, z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=8)
    module = StyleGAN2Module(net, objective=dict(pl_weight=0.0, style_mixing_prob=0.0), ema_kimg=None)
    G, D = net.generator, net.discriminator
    z, real = torch.randn(4, 8), torch.randn(4, 3, 16, 16)

    g_fwd = _count(lambda: G(z).sum())
    d_fwd = _count(lambda: D(real).sum())

    class Opt:  # the two optimisers the step asks Lightning for
        def zero_grad(self, set_to_none=True):
            pass

        def step(self):
            pass

        _on_before_step = _on_after_step = staticmethod(lambda: None)

    module.optimizers = lambda: (Opt(), Opt())
    module.manual_backward = lambda loss: loss.backward()
    module.log_dict = module.log = lambda *a, **k: None
    for p in net.parameters():
        p.grad = None
    module.iteration = 1  # a plain step: no R1 (every 16), no path length
    step = _count(lambda: module.training_step({"image": real}, 0))
    assert step.calls["conv"] == 2 * g_fwd.calls["conv"] + 3 * d_fwd.calls["conv"]
    assert step.macs["conv"] == 2 * g_fwd.macs["conv"] + 3 * d_fwd.macs["conv"]
    # backward: the D step, D's weight and input gradients for real and fake (none for the images:
    # from_rgb's input gradient is not computed); the G step, D's input gradients only (D frozen)
    # and G's weight and input gradients. So 2·(2·D - rgb) + D + 2·G in forward MACs.
    rgb = _count(lambda: D.from_rgb(real)).macs["conv"]
    expected = 2 * (2 * d_fwd.macs["conv"] - rgb) + d_fwd.macs["conv"] + 2 * g_fwd.macs["conv"]
    assert step.macs["conv_backward"] == expected
    assert all(p.grad is not None for p in G.parameters() if p.requires_grad)

    calls = {"G": 0, "D": 0}
    G.synthesis.register_forward_hook(lambda *a: calls.__setitem__("G", calls["G"] + 1))
    D.register_forward_hook(lambda *a: calls.__setitem__("D", calls["D"] + 1))
    for it in (1, 0):  # a plain step, then an R1 step: the same passes (R1 on the D step's real pass)
        calls.update(G=0, D=0)
        module.iteration = it
        module.training_step({"image": real}, 0)
        assert calls == {"G": 2, "D": 3}, (it, calls)
