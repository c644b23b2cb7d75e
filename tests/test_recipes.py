"""The demo's recipes: speed changes that must not change the training, and the compare presets."""

import torch

from genface.models.dcgan import DCGAN
from genface.training.gan import _frozen
from genface.training.losses import get_gan_loss


def test_frozen_discriminator_gives_the_same_generator_gradients():
    """The G step with D's requires_grad off (no D weight gradients) updates G exactly as before."""
    torch.manual_seed(0)
    net = DCGAN(resolution=32, ngf=8, ndf=8, z_dim=16)
    _, g_loss = get_gan_loss("non_saturating")
    z = torch.randn(8, 16)

    def g_grads(freeze: bool):
        net.zero_grad(set_to_none=True)
        torch.manual_seed(1)
        if freeze:
            with _frozen(net.discriminator):
                g_loss(net.discriminator(net.generator(z))).backward()
        else:
            g_loss(net.discriminator(net.generator(z))).backward()
        return [p.grad.clone() for p in net.generator.parameters()], [p.grad for p in net.discriminator.parameters()]

    plain_g, plain_d = g_grads(False)
    frozen_g, frozen_d = g_grads(True)
    for a, b in zip(plain_g, frozen_g):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert all(g is not None for g in plain_d) and all(g is None for g in frozen_d)
    # requires_grad is restored afterwards
    assert all(p.requires_grad for p in net.discriminator.parameters())
