"""The projector (image -> W) with an offline distance (issue 13)."""

import pytest
import torch

from genface.models.stylegan import StyleGAN
from genface.models.stylegan2 import StyleGAN2
from genface.projector import image_distance, project


def test_distance_is_zero_on_equal_images_and_grows_with_noise():
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(image_distance(x, x), torch.zeros(2), atol=1e-6)
    d1 = image_distance(x, (x + 0.05 * torch.randn_like(x)).clamp(0, 1))
    d2 = image_distance(x, (x + 0.2 * torch.randn_like(x)).clamp(0, 1))
    assert (d2 > d1).all() and (d1 > 0).all()


@pytest.mark.parametrize("make", [
    lambda: StyleGAN2(resolution=32, z_dim=32, w_dim=32, channel_base=512, channel_max=32, mapping_layers=2),
    lambda: StyleGAN(resolution=32, z_dim=32, w_dim=32, fmap_base=128, fmap_max=32, mapping_layers=2),
])
def test_projection_recovers_a_generated_image(make):
    torch.manual_seed(0)
    G = make().eval()
    target = G.generate(1, seed=5, noise_mode="const")[0]
    r = project(G, target, steps=60, space="w+")
    start = r.distances[0]
    assert r.distances[-1] < 0.5 * start  # the search moves far from w_avg towards the target
    with torch.no_grad():  # where the search starts: the image of w_avg
        w_avg = G.mapping(torch.randn(1000, 32), update_w_avg=False).mean(0, keepdim=True)
        mse0 = ((G.synthesis(w_avg, noise_mode="const")[0] - target) / 2).pow(2).mean()
    assert r.psnr > -10 * torch.log10(mse0).item() + 5  # at least 5 dB closer than w_avg
    assert r.ws.shape == (1, G.generator.num_ws, 32) and r.image.shape == target.shape
    with pytest.raises(ValueError, match="space"):
        project(G, target, steps=1, space="z")
