"""Images out (issue 13): generic from_pretrained, model cards, genface-generate,
genface-metrics, python -m genface, and the notebook-API bugs (batched interpolate,
FaceSwap.swap on one face)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genface.cli import generate as gen_cli
from genface.cli import metrics as metrics_cli
from genface.models import from_pretrained
from genface.models.dcgan import DCGAN
from genface.models.stylegan import StyleGAN
from genface.models.stylegan2 import StyleGAN2
from genface.models.vae import VAE
from genface.provenance import is_marked_png

TINY_SG2 = dict(resolution=32, z_dim=16, w_dim=16, channel_base=256, channel_max=16)


@pytest.fixture(scope="module")
def sg2_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sg2")
    StyleGAN2(**TINY_SG2).save_pretrained(path)
    return path


@pytest.mark.parametrize("make", [lambda: DCGAN(resolution=32, ngf=8, ndf=8, z_dim=16),
                                  lambda: VAE(resolution=32, widths=[8, 16, 32], z_dim=8),
                                  lambda: StyleGAN2(**TINY_SG2)])
def test_from_pretrained_reads_the_class_key(tmp_path, make):
    torch.manual_seed(0)
    net = make().eval()
    net.save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path)
    assert type(loaded) is type(net) and not loaded.training
    assert torch.equal(loaded.generate(2, seed=3), net.generate(2, seed=3))


def test_from_pretrained_refuses_classes_outside_genface(tmp_path):
    DCGAN(resolution=32, ngf=8, ndf=8, z_dim=16).save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    for bad in ("os.system", "genface.utils.require"):
        (tmp_path / "config.json").write_text(json.dumps({**meta, "class": bad}))
        with pytest.raises(ValueError, match="not a genface model class"):
            from_pretrained(tmp_path)


def test_model_card_is_written_beside_the_weights(tmp_path):
    net = StyleGAN2(**TINY_SG2)
    net.card_info = {"images_seen": 1234, "metrics": {"fsd_synth1k": 12.5}}
    net.save_pretrained(tmp_path)
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: genface")
    assert "genface.models.stylegan2.StyleGAN2" in card and "arXiv:1912.04958" in card
    assert f"total {sum(p.numel() for p in net.parameters()):,}" in card
    assert "images seen: 1,234" in card and "| fsd_synth1k | 12.5 |" in card
    assert "Synthetic media" in card and '"channel_max": 16' in card


def test_generate_writes_marked_images_equal_to_the_notebook_api(sg2_dir, tmp_path):
    out = tmp_path / "out"
    assert gen_cli.main([str(sg2_dir), "--seeds", "3-5", "--psi", "0.7", "--grid", "--out", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["grid.png", "seed0003.png", "seed0004.png", "seed0005.png"]
    assert all(is_marked_png(out / f) for f in files)
    model = from_pretrained(sg2_dir)
    want = model.generate(1, seed=4, truncation_psi=0.7, noise_mode="const")[0]
    want = ((want + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    got = np.asarray(Image.open(out / "seed0004.png"))
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_generate_style_mixing_grid_and_walk(sg2_dir, tmp_path):
    out = tmp_path / "mix"
    args = [str(sg2_dir), "--no-images", "--mix-rows", "0-1", "--mix-cols", "2-4", "--crossover", "2",
            "--out", str(out)]
    assert gen_cli.main(args) == 0
    grid = Image.open(out / "stylemix.png")
    assert grid.size == (4 * 34 + 2, 3 * 34 + 2)  # (cols+1) x (rows+1) cells of 32 px, 2 px borders
    model = from_pretrained(sg2_dir)
    cells = gen_cli.style_mixing_grid(model, [0, 1], [2, 3, 4], crossover=2)
    assert torch.equal(cells[1:, 0], gen_cli.generate_images(model, [0, 1]))
    # crossover = num_ws: all styles from the row seed, so every cell of a row equals its row image
    full = gen_cli.style_mixing_grid(model, [0], [2, 3], crossover=model.generator.num_ws)
    assert (full[1, 1:] - full[1, 0]).abs().max() < 1e-5
    frames = gen_cli.latent_walk(model, [0, 1, 2], frames=4, space="w")
    assert frames.shape == (9, 3, 32, 32)
    assert torch.allclose(frames[0], gen_cli.generate_images(model, [0])[0], atol=1e-5)


def test_generate_video_is_marked(sg2_dir, tmp_path):
    pytest.importorskip("av")
    from genface.faces.io import VideoReader

    video = tmp_path / "walk.mp4"
    assert gen_cli.main([str(sg2_dir), "--no-images", "--seeds", "0,1", "--frames", "5",
                         "--video", str(video), "--out", str(tmp_path)]) == 0
    with VideoReader(video) as r:
        frames = list(r)
    assert len(frames) == 6 and frames[0].shape == (32, 32, 3)
    import av

    with av.open(str(video)) as c:
        assert c.metadata.get("synthetic") == "true"


def test_generate_refuses_style_options_for_other_models(tmp_path):
    VAE(resolution=32, widths=[8, 16, 32], z_dim=8).save_pretrained(tmp_path)
    with pytest.raises(SystemExit, match="not style-based"):
        gen_cli.main([str(tmp_path), "--psi", "0.5", "--out", str(tmp_path / "o")])
    assert gen_cli.parse_seeds("0-2,7") == [0, 1, 2, 7]


def _write_pngs(folder: Path, n: int, seed: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def test_metrics_model_against_folder_json(tmp_path, synthetic_cache):
    VAE(resolution=32, widths=[8, 16, 32], z_dim=8).save_pretrained(tmp_path / "vae")
    ref = _write_pngs(tmp_path / "ref", 40, 0)
    out = tmp_path / "scores.json"
    assert metrics_cli.main([str(tmp_path / "vae"), str(ref), "--metrics", "msssim_pairs1k",
                             "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["generated"]["class"] == "VAE" and result["reference"]["num_images"] == 40
    assert 0 < result["metrics"]["msssim_pairs1k"] <= 1
    assert metrics_cli.main([str(tmp_path / "vae"), str(ref), "--metrics", "no_such_metric"]) == 1


@pytest.mark.slow
def test_metrics_folder_against_folder(tmp_path, synthetic_cache):
    gen = _write_pngs(tmp_path / "gen", 2000, 1)
    ref = _write_pngs(tmp_path / "ref", 40, 0)
    result = metrics_cli.evaluate(gen, ref, ["msssim_pairs1k"], resolution=32)
    # independent uniform noise: MS-SSIM between random pairs is near 0, as for the reference
    assert result["metrics"]["msssim_pairs1k"] < 0.2
    small = _write_pngs(tmp_path / "small", 10, 2)
    with pytest.raises(ValueError, match="has 10 images"):
        metrics_cli.evaluate(small, ref, ["msssim_pairs1k"], resolution=32)


def test_python_m_genface_lists_the_commands():
    r = subprocess.run([sys.executable, "-m", "genface"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    for name in ("genface-train", "genface-generate", "genface-metrics", "genface-compare"):
        assert name in r.stdout


def test_interpolate_takes_batched_latents():
    torch.manual_seed(0)
    net = StyleGAN(resolution=32, z_dim=16, w_dim=16, fmap_base=64, fmap_max=16).eval()
    z1, z2 = torch.randn(3, 16), torch.randn(3, 16)
    frames = net.interpolate(z1, z2, steps=4, space="w")
    assert frames.shape == (3, 4, 3, 32, 32)
    one = net.interpolate(z1[1], z2[1], steps=4, space="w")
    assert one.shape == (4, 3, 32, 32) and torch.allclose(frames[1], one, atol=1e-5)
    with pytest.raises(ValueError, match="interpolate needs"):
        net.interpolate(z1, z2[:2], steps=4)


def test_faceswap_swaps_one_unbatched_face():
    from genface.models.faceswap import FaceSwap

    torch.manual_seed(0)
    net = FaceSwap(width=0.0625).eval()
    x = torch.rand(3, 64, 64) * 2 - 1
    with torch.no_grad():
        y = net.swap(x, 1)
        assert y.shape == x.shape
        assert torch.allclose(y, net.swap(x[None], 1)[0], atol=1e-6)
