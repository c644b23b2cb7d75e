"""DCGAN and VAE: exact parameter counts, shapes, notebook API, save/load round trips."""

import pytest
import torch

from genface.models.dcgan import DCGAN
from genface.models.vae import VAE, kl_divergence


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_dcgan_matches_pytorch_examples_parameter_counts():
    net = DCGAN()  # z_dim=100, ngf=ndf=64, 64x64 RGB
    assert n_params(net.generator) == 3_576_704
    assert n_params(net.discriminator) == 2_765_568


@pytest.mark.parametrize("res", [32, 64, 128])
def test_dcgan_shapes(res):
    net = DCGAN(resolution=res, ngf=8, ndf=8, z_dim=16)
    x = net.generate(3, seed=0)
    assert x.shape == (3, 3, res, res)
    assert x.min() >= -1 and x.max() <= 1
    assert net.discriminator(x).shape == (3,)


def test_dcgan_rejects_bad_input():
    net = DCGAN(resolution=32, ngf=8, ndf=8)
    with pytest.raises(ValueError, match="resolutions"):
        DCGAN(resolution=48)
    with pytest.raises(ValueError, match="expected z"):
        net.generator(torch.zeros(2, 7))
    with pytest.raises(ValueError, match="expected images"):
        net.discriminator(torch.zeros(2, 3, 64, 64))
    with pytest.raises(TypeError, match="valid fields"):
        DCGAN(ngff=3)


def test_dcgan_generate_is_seeded():
    net = DCGAN(resolution=32, ngf=8, ndf=8)
    assert torch.equal(net.generate(2, seed=3), net.generate(2, seed=3))
    assert not torch.equal(net.generate(2, seed=3), net.generate(2, seed=4))


def test_dcgan_init_follows_paper():
    net = DCGAN()
    w = net.generator.net[1][0].weight
    assert abs(w.std().item() - 0.02) < 0.002
    bn = net.generator.net[0][1].weight
    assert abs(bn.mean().item() - 1.0) < 0.01


@pytest.mark.parametrize("cls,kwargs", [(DCGAN, dict(resolution=32, ngf=8, ndf=8, z_dim=16)),
                                        (VAE, dict(resolution=32, widths=[8, 16, 32], z_dim=8))])
def test_save_pretrained_round_trip(tmp_path, cls, kwargs):
    net = cls(**kwargs)
    for p in net.parameters():  # make the weights differ from a fresh init
        p.data.add_(torch.randn_like(p) * 0.01)
    net.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "config.json").is_file()
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert not list((tmp_path / "m").glob("*.tmp"))
    again = cls.from_pretrained(tmp_path / "m")
    assert again.config == net.config
    for (k, a), (_, b) in zip(net.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k
    assert torch.equal(net.generate(2, seed=1), again.generate(2, seed=1))


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        DCGAN.from_pretrained(tmp_path)
    VAE(resolution=32, widths=[8, 16, 32]).save_pretrained(tmp_path / "v")
    with pytest.raises(ValueError, match="holds a"):
        DCGAN.from_pretrained(tmp_path / "v")


def test_vae_api_shapes():
    vae = VAE(resolution=32, widths=[8, 16, 32], z_dim=8)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    x_hat, mu, logvar = vae(x)
    assert x_hat.shape == x.shape and mu.shape == logvar.shape == (4, 8)
    assert vae.sample(5, seed=0).shape == (5, 3, 32, 32)
    assert torch.equal(vae.sample(2, seed=0), vae.sample(2, seed=0))
    assert vae.reconstruct(x).shape == x.shape
    path = vae.interpolate(x[0], x[1], steps=6)
    assert path.shape == (6, 3, 32, 32)
    # the end points of the interpolation are the reconstructions of a and b
    torch.testing.assert_close(path[0], vae.reconstruct(x[:1])[0])
    torch.testing.assert_close(path[-1], vae.reconstruct(x[1:2])[0])
    with pytest.raises(ValueError, match="widths"):
        VAE(resolution=64, widths=[8, 16])


def test_kl_closed_form_matches_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.randn(3, 4), torch.randn(3, 4) * 0.5
    kl = kl_divergence(mu, logvar)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    ref = torch.distributions.kl_divergence(q, p).sum(1)
    torch.testing.assert_close(kl, ref)
    assert torch.all(kl_divergence(torch.zeros(2, 4), torch.zeros(2, 4)) == 0)
