"""FaceSwap-GAN: per-identity PatchGANs beside the FaceSwap reconstruction, the perceptual
term from an offline network, the optional learned mask, manual optimisation with one
counted step per batch, and exact resume."""

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import open_dict

from genface.cli.train import train
from genface.config import validate_config
from genface.metrics.synth_net import SynthFeatureNet, SynthNetConfig, save_synth_net
from genface.models.faceswap import FaceSwap
from genface.nn.translation import PatchGANDiscriminator
from genface.training.checkpoint import load_checkpoint
from genface.training.faceswap_gan import FaceSwapGANModule, perceptual_features
from tests.conftest import TINY_MODEL, compose_config


@pytest.fixture(scope="module")
def synth_file(tmp_path_factory):
    """A small (untrained) SyntheticFaces feature net saved as the metrics save it."""
    torch.manual_seed(0)
    net = SynthFeatureNet(SynthNetConfig(resolution=32, base_channels=4, max_channels=8, feature_dim=8))
    return save_synth_net(net, tmp_path_factory.mktemp("synthnet") / "net.safetensors")


def tiny(synth_file):
    return [*TINY_MODEL["faceswap"], "model.d_ndf=4", "model.d_layers=2", f"model.perceptual={synth_file}"]


def test_configs_and_defaults(tmp_path):
    cfg = compose_config("train", ["model=faceswap_gan", "data=synthetic_swap"], tmp_path)
    validate_config(cfg)
    m = instantiate(cfg.model, _convert_="all")
    assert isinstance(m, FaceSwapGANModule) and not m.automatic_optimization
    assert m.hparams.lr == 5e-5 and m.hparams.losses == {"mae": 1.0}  # FaceSwap's recipe underneath
    assert len(m.discriminators) == 2 and all(isinstance(d, PatchGANDiscriminator) for d in m.discriminators)
    assert m.hparams.perceptual == "synth" and m._phi is None  # loaded at the first step, not here
    pre = compose_config("train", ["experiment=compare/faceswap_gan", "data=synthetic_faces", "data.resolution=32"],
                         tmp_path)
    validate_config(pre)
    assert pre.data._target_ == "genface.data.swap.SwapDataModule" and pre.model.d_layers == 2


def test_perceptual_networks(synth_file, tmp_path):
    x = torch.rand(2, 3, 32, 32)
    phi = perceptual_features(str(synth_file), 32)
    assert phi(x).shape == (2, 8)
    assert perceptual_features("none", 32) is None
    with pytest.raises(ValueError, match="unknown perceptual"):
        perceptual_features("vggface", 32)
    with pytest.raises(FileNotFoundError, match="vgg16"):
        perceptual_features(f"vgg16:{tmp_path / 'missing.pth'}", 32)


def test_vgg16_from_a_local_file(tmp_path):
    """The real-face option: VGG16's convolutional layers (to relu3_3) from a local state dict
    in torchvision's key layout; here randomly initialised, saved as torchvision's file would be."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["D"])
    path = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    phi = perceptual_features(f"vgg16:{path}", 32)
    x = torch.rand(1, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        want = features[:16]((x - mean) / std)
    torch.testing.assert_close(phi(x), want)
    assert phi(x).shape == (1, 256, 8, 8)  # relu3_3: 256 channels at 1/4 size


def test_fast_dev_run_counts_one_step_per_batch(make_cfg, synth_file):
    result = train(make_cfg("faceswap_gan", *tiny(synth_file), "+trainer.fast_dev_run=true"))
    assert result["trainer"].global_step == 1


def test_short_run_logs_the_gan_terms_and_exports_a_faceswap(make_cfg, synth_file):
    result = train(make_cfg("faceswap_gan", *tiny(synth_file), "model.adv_on_swaps=true"))
    out, module = result["output_dir"], result["module"]
    assert result["trainer"].global_step == 4
    csv = (out / "metrics.csv").read_text()
    for key in ("train/rec_a", "train/g_adv_b", "train/g_adv_swap_a", "train/perceptual_a", "train/d_a",
                "val/swap_synth_gt"):
        assert key in csv, key
    net = FaceSwap.from_pretrained(out / "pretrained")  # genface-swap converts with it unchanged
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(net.swap(x, to=1), module.net.swap(x, to=1))
    y = module.metric_inputs()["swap_fn"](x * 2 - 1, 1)
    torch.testing.assert_close(y, net.swap(x, to=1) * 2 - 1)
    ckpt = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert any(k.startswith("discriminators.1.") for k in ckpt["state_dict"])
    assert len(ckpt["optimizer_states"]) == 2


def test_the_adversarial_term_changes_the_decoder_update(synth_file):
    """With adv_weight > 0 the decoders receive gradients from the discriminators: one step
    from the same start differs from a step with adv_weight = 0 (and from no step)."""
    def step(adv, ramp_steps=0):
        torch.manual_seed(0)
        m = FaceSwapGANModule(FaceSwap(resolution=32, width=0.0625), augment=False, adv_weight=adv,
                              perceptual="none", d_ndf=4, d_layers=2, ramp_steps=ramp_steps)
        opts = [torch.optim.SGD(m.net.parameters(), lr=1.0), torch.optim.SGD(m.discriminators.parameters(), lr=1.0)]
        for o in opts:
            o._on_before_step = o._on_after_step = lambda: None
        m.optimizers = lambda: opts
        m.manual_backward = lambda loss: loss.backward()
        m.log_dict = m.log = lambda *a, **k: None
        g = torch.Generator().manual_seed(1)
        batch = {"image_a": torch.rand(4, 3, 32, 32, generator=g) * 2 - 1,
                 "image_b": torch.rand(4, 3, 32, 32, generator=g) * 2 - 1}
        m.training_step(batch, 0)
        return m.net.decoders[0].to_rgb.weight.detach().clone(), m.discriminators[0].net[0][0].weight.detach().clone()

    dec0, d0 = step(0.0)
    dec1, d1 = step(1.0)
    assert not torch.allclose(dec0, dec1)
    torch.testing.assert_close(step(1.0, ramp_steps=10)[0], dec0)  # step 0 of a ramp: no adversarial term yet
    torch.manual_seed(0)
    fresh = FaceSwapGANModule(FaceSwap(resolution=32, width=0.0625), augment=False, perceptual="none", d_ndf=4,
                              d_layers=2)
    assert not torch.allclose(d0, fresh.discriminators[0].net[0][0].weight)  # the discriminators trained too


def test_mask_blend_with_regulariser(make_cfg, synth_file):
    result = train(make_cfg("faceswap_gan", *tiny(synth_file), "model.net.learn_mask=true", "model.mask_blend=true",
                            "model.perceptual=none", "trainer.max_steps=2"))
    assert "train/mask_reg_a" in (result["output_dir"] / "metrics.csv").read_text()
    with pytest.raises(ValueError, match="learn_mask"):
        FaceSwapGANModule(FaceSwap(resolution=32, width=0.0625), mask_blend=True)


def test_resume_continues_exactly(make_cfg, synth_file, tmp_path):
    """Stopped at step 3 and resumed to 6 equals an uninterrupted run of 6 (autoencoder and
    discriminators), with the warp augmentation drawing from the restored RNG."""
    common = [*tiny(synth_file), "trainer.max_steps=6", "data.dataset.num_images=80", "data.val_size=8",
              "callbacks.model_checkpoint.every_n_train_steps=3", "model.preview_every_n_steps=0",
              "trainer.val_check_interval=3"]
    full = train(make_cfg("faceswap_gan", *common, output_dir=tmp_path / "full"))
    part = make_cfg("faceswap_gan", *common, output_dir=tmp_path / "part")
    with open_dict(part):
        part.trainer.max_steps = 3
    train(part)
    ckpt = tmp_path / "part" / "checkpoints" / "step_0000003.ckpt"
    resumed = train(make_cfg("faceswap_gan", *common, f"ckpt_path={ckpt}", output_dir=tmp_path / "resumed"))
    assert resumed["trainer"].global_step == 6
    a, b = full["module"].state_dict(), resumed["module"].state_dict()
    assert any(k.startswith("discriminators.") for k in a)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=0, msg=k)
    part_state = load_checkpoint(ckpt)["state_dict"]
    assert any(not torch.equal(part_state[k], a[k]) for k in a)


@pytest.mark.realdata
def test_genface_swap_converts_a_video_with_a_trained_faceswap_gan(make_cfg, tmp_path):
    """The export of a FaceSwap-GAN run (with its learned mask) converts a short video of ORL
    faces through genface-swap's convert path (``--mask learned``), as FaceSwap and CycleGAN do
    (tests/test_faces.py, tests/test_cyclegan.py)."""
    import json
    from fractions import Fraction

    import numpy as np

    from genface.cli.swap import main
    from genface.faces.io import VideoReader, VideoWriter, read_image
    from tests.conftest import genface_data

    orl = genface_data() / "orl_faces"
    if not orl.is_dir():
        pytest.skip(f"{orl} not found")
    result = train(make_cfg("faceswap_gan", *TINY_MODEL["faceswap"], "model.d_ndf=4", "model.d_layers=2",
                            "model.perceptual=none", "model.net.learn_mask=true", "model.mask_blend=true",
                            "trainer.max_steps=2"))
    model_dir = result["output_dir"] / "pretrained"
    assert FaceSwap.from_pretrained(model_dir).has_mask
    frames = [read_image(orl / "s1" / f"{i}.pgm") for i in (1, 3, 4)]
    frames.append(np.full_like(frames[0], 40))  # a frame without a face
    src = tmp_path / "in.mp4"
    with VideoWriter(src, Fraction(15), metadata={}) as w:
        for f in frames:
            w.write(f)
    out = tmp_path / "out.mp4"
    assert main([str(src), str(out), "--model", str(model_dir), "--to", "1", "--detector", "haar",
                 "--mask", "learned", "--no-progress"]) == 0
    with VideoReader(out) as r:
        got = list(r)
        assert len(got) == 4 and r._container.metadata.get("comment") == "synthetic"
    report = json.loads(out.with_name(out.name + ".json").read_text())["report"]
    assert report["frames"] == 4 and report["faces_swapped"] >= 2 and report["frames_without_face"] >= 1
    assert np.abs(got[0].astype(int) - frames[0].astype(int)).mean() > 1  # the face changed
    assert np.abs(got[-1].astype(int) - frames[-1].astype(int)).mean() < 3  # the empty frame did not
