"""CycleGAN: parameter counts against the reference implementation, shapes, the training
recipe (LSGAN, cycle, identity, image pool, linear decay), exact resume, and swapping a
video through genface-swap's convert path."""

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import open_dict

from genface.cli.train import train
from genface.config import validate_config
from genface.models.cyclegan import CycleGAN, ResnetGenerator
from genface.nn.translation import PatchGANDiscriminator, patchgan_receptive_field
from genface.training.checkpoint import load_checkpoint
from genface.training.cyclegan import CycleGANModule, ImagePool, linear_decay
from tests.conftest import compose_config

#: the tiny CycleGAN of the fast tests (two synthetic identities, 32 px)
TINY_CYCLEGAN = ["data=synthetic_swap", "data.dataset.num_identities=2", "model.net.ngf=4", "model.net.ndf=4",
                 "model.net.n_blocks=1", "model.net.d_layers=2", "model.swap_eval_samples=8",
                 "model.preview_samples=4"]


def _count(m):
    return sum(p.numel() for p in m.parameters())


# -- architecture -----------------------------------------------------------------------
def test_parameter_counts_match_the_reference():
    """junyanz/pytorch-CycleGAN-and-pix2pix ``models/networks.py``: ``define_G(3, 3, 64,
    'resnet_9blocks', norm='instance')`` prints 11.378 M (11,378,179, quoted in its issue
    threads); ``define_D(3, 64, 'basic', norm='instance')`` (NLayerDiscriminator, 3 layers)
    prints 2.765 M: written out, 3*64*16+64 + 64*128*16+128 + 128*256*16+256 +
    256*512*16+512 + 512*16+1 = 2,764,737."""
    net = CycleGAN()
    assert _count(net.g_ab) == _count(net.g_ba) == 11_378_179
    assert _count(net.d_a) == _count(net.d_b) == 2_764_737
    assert _count(CycleGAN(n_blocks=6).g_ab) == 11_378_179 - 3 * 2 * (256 * 256 * 9 + 256)  # resnet_6blocks: 7,837,699
    assert _count(CycleGAN(n_blocks=6).g_ab) == 7_837_699
    # instance norm has no affine parameters; batch norm drops the conv biases and adds its own
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) and m.affine for m in net.modules())
    assert _count(PatchGANDiscriminator(norm="batch")) == 2_764_737 - (128 + 256 + 512) + 2 * (128 + 256 + 512)


def test_layout_and_shapes():
    g = ResnetGenerator(CycleGAN(resolution=64, n_blocks=6).config)
    kinds = [type(m).__name__ for m in g.modules()]
    assert kinds.count("ReflectionPad2d") == 2 + 2 * 6 and kinds.count("ConvTranspose2d") == 2
    assert kinds.count("Tanh") == 1 and kinds.count("ResidualBlock") == 6
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    y = g(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert patchgan_receptive_field(3) == 70 and patchgan_receptive_field(2) == 34
    assert PatchGANDiscriminator()(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)  # pix2pix: 30x30 patches
    with pytest.raises(ValueError, match="multiples of 4"):
        g(torch.zeros(1, 3, 30, 30))


def test_init_is_the_references_normal_002():
    """The reference's ``init_weights(net, 'normal', 0.02)``: every conv weight N(0, 0.02),
    biases zero (instance norm has no affine parameters to initialise)."""
    torch.manual_seed(0)
    net = CycleGAN(resolution=64, ngf=16, ndf=16, n_blocks=2)
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    w = torch.cat([m.weight.detach().flatten() for m in convs])
    assert len(convs) > 10 and abs(w.mean().item()) < 1e-3 and w.std().item() == pytest.approx(0.02, rel=0.02)
    assert all(m.bias is None or not m.bias.any() for m in convs)
    big = max(convs, key=lambda m: m.weight.numel())  # one layer alone, not only the pooled weights
    assert big.weight.std().item() == pytest.approx(0.02, rel=0.05)


def test_swap_contract_and_save_load(tmp_path):
    torch.manual_seed(0)
    net = CycleGAN(resolution=32, ngf=4, ndf=4, n_blocks=1).eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        a2b = (net.g_ab(x * 2 - 1) + 1) / 2
        b2a = (net.g_ba(x * 2 - 1) + 1) / 2
    torch.testing.assert_close(net.swap(x, to=1), a2b.clamp(0, 1))
    torch.testing.assert_close(net.swap(x, to=0), b2a.clamp(0, 1))
    out, mask = net.swap(x, to=torch.tensor([1, 0, 1]), return_mask=True)
    assert mask is None
    torch.testing.assert_close(out[1], b2a[1].clamp(0, 1))
    assert net.config.num_identities == 2 and not net.config.learn_mask
    net.save_pretrained(tmp_path / "m")
    back = CycleGAN.from_pretrained(tmp_path / "m")
    torch.testing.assert_close(back.swap(x, to=1), net.swap(x, to=1))
    with pytest.raises(IndexError):
        net.translate(x, 2)


# -- recipe pieces ---------------------------------------------------------------------------
def test_image_pool_fills_then_mixes_and_round_trips():
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    torch.testing.assert_close(pool.query(first), first)  # filling: returned as is
    new = 10 + torch.arange(64.0).view(64, 1, 1, 1)
    out = pool.query(new)
    from_history = (out < 10).sum().item()
    assert 0 < from_history <= 4  # some come from the history (each stored one at most once per swap)
    state = pool.state_dict()
    other = ImagePool(0)
    other.load_state_dict(state)
    assert other.size == 4 and all(torch.equal(a, b) for a, b in zip(other.images, pool.images))
    assert ImagePool(0).query(new) is not None and torch.equal(ImagePool(0).query(new), new)


def test_linear_decay():
    assert linear_decay(0, 200, 0.5) == 1.0 and linear_decay(99, 200, 0.5) == 1.0
    assert linear_decay(100, 200, 0.5) == 1.0
    assert linear_decay(150, 200, 0.5) == pytest.approx(1 - 50 / 101)
    assert linear_decay(199, 200, 0.5) == pytest.approx(1 - 99 / 101)
    assert linear_decay(10, 200, 1.0) == 1.0


def test_defaults_follow_the_paper(tmp_path):
    cfg = compose_config("train", ["model=cyclegan", "data=synthetic_swap"], tmp_path)
    validate_config(cfg)
    m = instantiate(cfg.model, _convert_="all")
    hp = m.hparams
    assert (hp.loss, hp.lambda_cyc, hp.lambda_id, hp.lr, tuple(hp.betas), hp.pool_size) == (
        "lsgan", 10.0, 0.5, 2e-4, (0.5, 0.999), 50)
    assert m.net.config.n_blocks == 6 and m.net.config.norm == "instance" and m.net.config.resolution == 64
    pre = compose_config("train", ["experiment=compare/cyclegan", "data=synthetic_faces", "data.resolution=32"], tmp_path)
    validate_config(pre)
    assert pre.data._target_ == "genface.data.swap.SwapDataModule" and pre.model.net.ngf == 16


def test_g_loss_is_the_reference_objective():
    """One G step's loss equals the paper's sum written out by hand: (D_Y(G(a)) - 1)^2 +
    (D_X(F(b)) - 1)^2 + 10 (|F(G(a)) - a| + |G(F(b)) - b|) + 5 (|G(b) - b| + |F(a) - a|)."""
    torch.manual_seed(0)
    net = CycleGAN(resolution=32, ngf=4, ndf=4, n_blocks=1, d_layers=2)
    module = CycleGANModule(net)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    logged = {}
    module.optimizers = lambda: (_NoOpt(), _NoOpt())
    module.manual_backward = lambda loss: None
    module.log_dict = lambda d, **kw: logged.update(d)
    module.log = lambda *a, **kw: None
    with torch.no_grad():
        fb, fa = net.g_ab(a), net.g_ba(b)
        want = ((net.d_b(fb) - 1) ** 2).mean() + ((net.d_a(fa) - 1) ** 2).mean() \
            + 10 * ((net.g_ba(fb) - a).abs().mean() + (net.g_ab(fa) - b).abs().mean()) \
            + 5 * ((net.g_ab(b) - b).abs().mean() + (net.g_ba(a) - a).abs().mean())
    module.training_step({"image_a": a, "image_b": b}, 0)
    assert float(logged["train/g_loss"]) == pytest.approx(float(want), rel=1e-5)
    assert module.iteration == 1 and len(module.pool_a.images) == 2


class _NoOpt:
    param_groups: list = []
    _on_before_step = _on_after_step = staticmethod(lambda: None)

    def zero_grad(self, set_to_none=True):
        pass

    def step(self):
        pass


# -- training ----------------------------------------------------------------------------
def test_fast_dev_run(make_cfg):
    result = train(make_cfg("cyclegan", *TINY_CYCLEGAN, "+trainer.fast_dev_run=true"))
    assert result["trainer"].global_step == 1


def test_short_run_logs_swap_metrics_and_exports(make_cfg):
    result = train(make_cfg("cyclegan", *TINY_CYCLEGAN))
    out, module = result["output_dir"], result["module"]
    assert result["trainer"].global_step == 4 and module.iteration == 4
    csv = (out / "metrics.csv").read_text()
    for key in ("train/cycle", "train/identity", "train/d_a", "train/g_adv_ab", "train/lr", "val/cycle_l1",
                "val/swap_synth_gt"):
        assert key in csv, key
    net = CycleGAN.from_pretrained(out / "pretrained")
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(net.swap(x, to=1), module.net.swap(x, to=1))
    inputs = module.metric_inputs()
    y = inputs["swap_fn"](x * 2 - 1, 0)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    extra = module.evaluate_extra(result["datamodule"], num=4, factor_net=False)
    assert {"swap_synth_gt", "swap_synth_gt/ssim", "swap_synth_gt/noswap_mae"} <= set(extra)
    assert "swap_data" in module.metric_inputs()
    ckpt = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert ckpt["genface_iteration"] == 4 and ckpt["genface_image_pools"]["a"]["images"].shape[0] == 32  # 4 steps x 8 A faces, under the 50 kept


def test_resume_continues_exactly(make_cfg, tmp_path):
    """Stopped at step 3 and resumed to 6 equals an uninterrupted run of 6: weights, both
    image pools (a small pool of 6 is full by then, so the random history draws matter), the
    iteration counter and the decayed learning rate."""
    common = [*TINY_CYCLEGAN, "trainer.max_steps=6", "data.dataset.num_images=80", "data.val_size=8",
              "callbacks.model_checkpoint.every_n_train_steps=3", "model.pool_size=6", "trainer.val_check_interval=3"]
    full = train(make_cfg("cyclegan", *common, output_dir=tmp_path / "full"))
    part = make_cfg("cyclegan", *common, output_dir=tmp_path / "part")
    with open_dict(part):
        part.trainer.max_steps = 6  # same total (the lr schedule depends on it); stopped by the callback below
        part.callbacks["stop"] = {"_target_": "tests.models.test_cyclegan.StopAt", "step": 3}
    train(part)
    ckpt = tmp_path / "part" / "checkpoints" / "step_0000003.ckpt"
    resumed = train(make_cfg("cyclegan", *common, f"ckpt_path={ckpt}", output_dir=tmp_path / "resumed"))
    a, b = full["module"], resumed["module"]
    assert resumed["trainer"].global_step == 6 and b.iteration == a.iteration == 6
    sa, sb = a.net.state_dict(), b.net.state_dict()
    for k in sa:
        torch.testing.assert_close(sb[k], sa[k], rtol=0, atol=0, msg=k)
    for pa, pb in ((a.pool_a, b.pool_a), (a.pool_b, b.pool_b)):
        assert len(pa.images) == len(pb.images) == 6
        assert all(torch.equal(x, y) for x, y in zip(pa.images, pb.images))
    part_state = load_checkpoint(ckpt)["state_dict"]
    assert any(not torch.equal(part_state[f"net.{k}"], sa[k]) for k in sa)
    lr_full = a.optimizers()[0].param_groups[0]["lr"]
    assert lr_full == pytest.approx(2e-4 * linear_decay(5, 6, 0.5)) and lr_full < 2e-4


class StopAt(L.Callback):
    """Stops training after ``step`` batches: an interrupted run (``max_steps`` unchanged)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def test_image_batches_fail_with_a_clear_message():
    module = CycleGANModule(CycleGAN(resolution=32, ngf=4, ndf=4, n_blocks=1))
    with pytest.raises(KeyError, match="data=synthetic_swap or data=swap_pair"):
        module.training_step({"image": torch.zeros(2, 3, 32, 32)}, 0)


# -- conversion ----------------------------------------------------------------------------
@pytest.mark.realdata
def test_genface_swap_converts_a_video_with_cyclegan(tmp_path):
    """genface-swap's convert path (detect, align, swap with G, mask, colour, blend) on a
    short video of ORL faces, with a CycleGAN saved by save_pretrained."""
    import json
    from fractions import Fraction

    import numpy as np

    from genface.cli.swap import main
    from genface.faces.io import VideoReader, VideoWriter, read_image
    from tests.conftest import genface_data

    orl = genface_data() / "orl_faces"
    if not orl.is_dir():
        pytest.skip(f"{orl} not found")
    torch.manual_seed(0)
    model_dir = tmp_path / "cyclegan"
    CycleGAN(resolution=64, ngf=4, ndf=4, n_blocks=1).save_pretrained(model_dir)
    frames = [read_image(orl / "s1" / f"{i}.pgm") for i in (1, 3, 4)]
    frames.append(np.full_like(frames[0], 40))  # a frame without a face
    src = tmp_path / "in.mp4"
    with VideoWriter(src, Fraction(15), metadata={}) as w:
        for f in frames:
            w.write(f)
    out = tmp_path / "out.mp4"
    assert main([str(src), str(out), "--model", str(model_dir), "--to", "1", "--detector", "haar",
                 "--no-progress"]) == 0
    with VideoReader(out) as r:
        got = list(r)
        assert len(got) == 4 and r._container.metadata.get("comment") == "synthetic"
    report = json.loads(out.with_name(out.name + ".json").read_text())["report"]
    assert report["frames"] == 4 and report["faces_swapped"] >= 2 and report["frames_without_face"] >= 1
    assert np.abs(got[0].astype(int) - frames[0].astype(int)).mean() > 1  # the face changed
    assert np.abs(got[-1].astype(int) - frames[-1].astype(int)).mean() < 3  # the empty frame did not


def test_swap_cli_refuses_a_non_swap_model(tmp_path, capsys):
    from genface.cli.swap import main
    from genface.models.dcgan import DCGAN

    DCGAN(resolution=32, ngf=4, ndf=4, z_dim=4).save_pretrained(tmp_path / "dcgan")
    assert main(["in.mp4", str(tmp_path / "o.mp4"), "--model", str(tmp_path / "dcgan")]) == 2
    assert "converts with" in capsys.readouterr().err
