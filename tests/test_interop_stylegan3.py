"""NVlabs stylegan3 pickles -> a genface MappingNetwork (issue 13), through the restricted unpickler.

Needs NVlabs' stylegan3 code on this machine (never committed): set GENFACE_REF_STYLEGAN3 to
a checkout of NVlabs/stylegan3 (the folder holding training/networks_stylegan3.py). Its
custom ops fall back on their reference implementations on the CPU. Skipped when unset.
"""

import os
import pickle
import sys
from pathlib import Path

import pytest
import torch

from genface.interop.nvlabs import mapping_from_nvlabs

REF = os.environ.get("GENFACE_REF_STYLEGAN3")
pytestmark = pytest.mark.skipif(
    not REF or not (Path(REF or ".") / "training" / "networks_stylegan3.py").is_file(),
    reason="set GENFACE_REF_STYLEGAN3 to an NVlabs/stylegan3 checkout")


NVLABS_PACKAGES = ("training", "torch_utils", "dnnlib")  # stylegan2-ada-pytorch uses the same names


def _nvlabs_modules() -> dict:
    return {n: m for n, m in sys.modules.items() if n.split(".")[0] in NVLABS_PACKAGES}


@pytest.fixture(scope="module")
def networks():
    other = _nvlabs_modules()  # e.g. stylegan2-ada-pytorch's, imported by test_interop_nvlabs.py
    for name in other:
        del sys.modules[name]
    sys.path.insert(0, REF)
    try:
        from training import networks_stylegan3

        yield networks_stylegan3
    finally:
        sys.path.remove(REF)
        for name in _nvlabs_modules():
            del sys.modules[name]
        sys.modules.update(other)


@pytest.mark.parametrize("layers,z_dim,w_dim", [(2, 32, 32), (3, 24, 40)])
def test_stylegan3_mapping_parity(networks, tmp_path, layers, z_dim, w_dim):
    torch.manual_seed(0)
    G = networks.Generator(z_dim=z_dim, c_dim=0, w_dim=w_dim, img_resolution=16, img_channels=3,
                           mapping_kwargs=dict(num_layers=layers), channel_base=256, channel_max=16).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in G.mapping.named_parameters():
            if name.endswith("bias"):  # zeros in a fresh model would hide mix-ups
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
        G.mapping.w_avg.copy_(torch.randn(w_dim, generator=g))
    path = tmp_path / "stylegan3-snapshot.pkl"
    path.write_bytes(pickle.dumps({"G": G, "G_ema": G, "D": None, "augment_pipe": None}))
    net = mapping_from_nvlabs(path)  # the pickle's code never runs
    assert net.num_ws == G.num_ws and torch.equal(net.w_avg, G.mapping.w_avg)
    z = torch.randn(5, z_dim, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for psi, cutoff in [(1.0, None), (0.5, None), (0.7, 4)]:
            want = G.mapping(z, None, truncation_psi=psi, truncation_cutoff=cutoff)
            got = net(z, truncation_psi=psi, truncation_cutoff=cutoff, update_w_avg=False)
            diff = (got - want).abs().max().item()
            print(f"StyleGAN3 mapping parity layers={layers} psi={psi} cutoff={cutoff}: max|diff| = {diff:.3e}")
            assert got.shape == want.shape == (5, G.num_ws, w_dim) and diff < 1e-5
