"""Swapping onto a generated identity: GeneratedFaces from a saved generator (samples, or a
StyleGAN's fixed coarse styles), and the swap_generated data config training FaceSwap."""

import pytest
import torch

from genface.cli.train import train
from genface.data.generated import GeneratedFaces, load_generator
from genface.models.dcgan import DCGAN
from genface.models.stylegan2 import StyleGAN2
from tests.conftest import TINY, TINY_MODEL


@pytest.fixture(scope="module")
def dcgan_dir(tmp_path_factory):
    torch.manual_seed(0)
    return DCGAN(resolution=32, ngf=4, ndf=4, z_dim=8).save_pretrained(tmp_path_factory.mktemp("dcgan"))


def test_samples_follow_the_sample_contract_and_are_deterministic(dcgan_dir):
    ds = GeneratedFaces(str(dcgan_dir), num_images=10, seed=3, resolution=32)
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert item["image"].min() >= -1 and item["image"].max() <= 1 and int(item["identity"]) == 1
    again = GeneratedFaces(load_generator(dcgan_dir), num_images=10, seed=3)
    assert torch.equal(ds.images, again.images)
    assert not torch.equal(ds.images[0], ds.images[1])
    assert not torch.equal(GeneratedFaces(str(dcgan_dir), num_images=10, seed=4).images, ds.images)
    with pytest.raises(ValueError, match="style mixing"):
        GeneratedFaces(str(dcgan_dir), num_images=2, mode="fixed_coarse")
    with pytest.raises(ValueError, match="data.resolution=64"):
        GeneratedFaces(str(dcgan_dir), num_images=2, resolution=64)


def test_fixed_coarse_styles_keep_one_identity():
    """crossover = num_ws: every face is the fixed identity; crossover = 0: every face is its own
    sample; in between the faces share the coarse styles and vary in the fine ones."""
    torch.manual_seed(0)
    net = StyleGAN2(resolution=32, channel_base=64, channel_max=8, z_dim=8, w_dim=8)
    same = GeneratedFaces(net, num_images=4, mode="fixed_coarse", crossover=net.generator.num_ws)
    assert all(torch.equal(same.images[0], im) for im in same.images)
    mixed = GeneratedFaces(net, num_images=4, mode="fixed_coarse", crossover=2)
    free = GeneratedFaces(net, num_images=4, mode="fixed_coarse", crossover=0)
    assert not torch.equal(mixed.images[0], mixed.images[1])

    def spread(x):
        x = x.float()
        return (x - x.mean(0)).abs().mean()

    assert spread(same.images) == 0 < spread(mixed.images)
    assert spread(free.images) > 0


def test_faceswap_trains_onto_a_generated_identity(make_cfg, dcgan_dir):
    tiny = [o for o in TINY if not o.startswith("data.dataset.")]
    result = train(make_cfg("faceswap", *tiny, *TINY_MODEL["faceswap"][2:], "data=swap_generated",
                            f"data.dir_b={dcgan_dir}", "data.dataset_a.num_images=40", "data.dataset_b.num_images=40",
                            "data.val_size=4", "+trainer.fast_dev_run=true", tiny=False))
    dm = result["datamodule"]
    assert result["trainer"].global_step == 1
    assert isinstance(dm.faces_b, GeneratedFaces) and len(dm.faces_a) == 40
