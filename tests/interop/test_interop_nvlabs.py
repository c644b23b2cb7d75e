"""NVlabs stylegan2-ada-pytorch -> genface StyleGAN2 parity, through the restricted unpickler.

Needs NVlabs' code on this machine (never committed): set GENFACE_REF_NVLABS to a checkout
of NVlabs/stylegan2-ada-pytorch (the folder holding training/networks.py). Its custom ops
fall back on their reference implementations on the CPU. Skipped when the variable is unset.
"""

import os
import pickle
import sys
from pathlib import Path

import pytest
import torch

from genface.interop.nvlabs import nvlabs_to_genface, stylegan2_from_nvlabs
from genface.interop.safe_pickle import load_nvlabs_pkl, stub_state_dict

REF = os.environ.get("GENFACE_REF_NVLABS")
pytestmark = pytest.mark.skipif(not REF or not (Path(REF or ".") / "training" / "networks.py").is_file(),
                                reason="set GENFACE_REF_NVLABS to an NVlabs/stylegan2-ada-pytorch checkout")


@pytest.fixture(scope="module")
def networks():
    sys.path.insert(0, REF)
    try:
        from training import networks

        yield networks
    finally:
        sys.path.remove(REF)


def _randomise(G, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith(("bias", "noise_strength")):  # zeros in a fresh model would hide mix-ups
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
        for name, b in G.named_buffers():
            if name.endswith(("noise_const", "w_avg")):
                b.copy_(torch.randn(b.shape, generator=g))


@pytest.mark.parametrize("res,base,cmax,layers", [(32, 1024, 64, 2), (64, 2048, 64, 8)])
def test_nvlabs_pickle_parity(networks, tmp_path, res, base, cmax, layers):
    torch.manual_seed(0)
    G = networks.Generator(z_dim=32, c_dim=0, w_dim=32, img_resolution=res, img_channels=3,
                           mapping_kwargs=dict(num_layers=layers),
                           synthesis_kwargs=dict(channel_base=base, channel_max=cmax)).eval()
    _randomise(G, 1)
    path = tmp_path / "network-snapshot.pkl"
    path.write_bytes(pickle.dumps({"G": G, "G_ema": G, "D": None, "augment_pipe": None}))
    net = stylegan2_from_nvlabs(path)
    assert net.resolution == res and torch.equal(net.mapping.w_avg, G.mapping.w_avg)
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = G(z, None, noise_mode="const")
        got = net.synthesis(net.mapping(z, update_w_avg=False), noise_mode="const")
        diff = (got - want).abs().max().item()
        print(f"NVlabs parity res={res}: max|diff| = {diff:.3e}")
        assert diff < 1e-4
        ws = torch.randn(3, G.num_ws, 32, generator=torch.Generator().manual_seed(3))
        assert (net.synthesis(ws, noise_mode="const") - G.synthesis(ws, noise_mode="const")).abs().max() < 1e-4
        want = G(z, None, truncation_psi=0.5, noise_mode="const")
        got = net.synthesis(net.mapping(z, truncation_psi=0.5, update_w_avg=False), noise_mode="const")
        assert (got - want).abs().max().item() < 1e-4
        assert (net.synthesis(ws, noise_mode="none") - G.synthesis(ws, noise_mode="none")).abs().max() < 1e-4


def test_every_nvlabs_generator_tensor_is_mapped(networks):
    G = networks.Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                           mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=256, channel_max=16))
    sd = stub_state_dict(load_nvlabs_pkl_bytes(pickle.dumps({"G_ema": G}))["G_ema"])
    assert set(sd) == set(G.state_dict())  # the stub keeps every parameter and buffer
    mapped = nvlabs_to_genface(sd)
    from genface.models.stylegan2 import StyleGAN2Generator

    net = StyleGAN2Generator(resolution=16, z_dim=16, w_dim=16, mapping_layers=2, channel_base=256, channel_max=16)
    assert set(mapped) == set(net.state_dict())


def load_nvlabs_pkl_bytes(blob):
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pkl") as f:
        f.write(blob)
        f.flush()
        return load_nvlabs_pkl(f.name)


def _randomise_d(D, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in D.named_parameters():
            if name.endswith("bias"):  # zeros in a fresh model would hide mix-ups
                p.add_(torch.randn(p.shape, generator=g) * 0.1)


@pytest.mark.parametrize("res,base,cmax,batch", [(32, 1024, 64, 4), (64, 2048, 64, 8)])
def test_nvlabs_discriminator_parity(networks, tmp_path, res, base, cmax, batch):
    from genface.interop.nvlabs import discriminator_from_nvlabs, nvlabs_d_to_genface

    torch.manual_seed(0)
    D = networks.Discriminator(c_dim=0, img_resolution=res, img_channels=3, channel_base=base,
                               channel_max=cmax).eval()
    _randomise_d(D, 1)
    path = tmp_path / "network-snapshot.pkl"
    path.write_bytes(pickle.dumps({"G": None, "G_ema": None, "D": D, "augment_pipe": None}))
    net = discriminator_from_nvlabs(path)  # restricted unpickler: NVlabs' classes never run
    assert net.resolution == res
    assert set(nvlabs_d_to_genface(stub_state_dict(load_nvlabs_pkl(path)["D"]))) == set(net.state_dict())
    x = torch.randn(batch, 3, res, res, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want, got = D(x, None), net(x)
    diff = (got - want).abs().max().item()
    print(f"NVlabs D parity res={res}: max|diff| = {diff:.3e} (scores {want.abs().max():.3f})")
    assert got.shape == want.shape == (batch, 1) and diff < 1e-4


def test_nvlabs_d_refuses_conditional_and_skip_discriminators(networks):
    from genface.interop.nvlabs import nvlabs_d_to_genface

    cond = networks.Discriminator(c_dim=4, img_resolution=16, img_channels=3, channel_base=256, channel_max=16)
    with pytest.raises(ValueError, match="class-conditional"):
        nvlabs_d_to_genface(cond.state_dict())
    skip = networks.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
                                  architecture="skip")
    with pytest.raises(ValueError, match="resnet"):
        nvlabs_d_to_genface(skip.state_dict())


def test_nvlabs_mapping_alone(networks, tmp_path):
    from genface.interop.nvlabs import mapping_from_nvlabs

    torch.manual_seed(0)
    G = networks.Generator(z_dim=16, c_dim=0, w_dim=24, img_resolution=16, img_channels=3,
                           mapping_kwargs=dict(num_layers=3),
                           synthesis_kwargs=dict(channel_base=256, channel_max=16)).eval()  # eval: w_avg fixed
    _randomise(G, 1)
    path = tmp_path / "network-snapshot.pkl"
    path.write_bytes(pickle.dumps({"G_ema": G}))
    net = mapping_from_nvlabs(path)
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = G.mapping(z, None, truncation_psi=0.6)
        assert (net(z, truncation_psi=0.6, update_w_avg=False) - want).abs().max().item() < 1e-5
