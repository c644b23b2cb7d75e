"""Training of ProGAN / StyleGAN / StyleGAN2: growth schedule, mid-phase resume, lazy
regularisation, path length, the Table-1 ablation configs and the compare presets."""

import math

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import open_dict

from genface.cli.train import train
from genface.config import validate_config
from genface.models.stylegan import ABLATION_CONFIGS, ABLATION_STYLE_MIXING
from genface.training.checkpoint import load_checkpoint
from genface.training.progan import (
    GrowthSchedule,
    ProGANModule,
    StagedGenerator,
    downsample_real,
    fade_real,
)
from genface.training.stylegan import StyleGAN2Module, StyleGANModule, path_length_penalty
from tests.conftest import TINY, TINY_TABLE

# Tiny widths: the stylegan row of the one TINY table (tests/conftest.py), 16 images per phase
TINY_ABLATION = TINY_TABLE["stylegan"].overrides(fade_images=16, stable_images=16)
STYLE_MODELS = ("progan", "stylegan", "stylegan2")


def style_cfg(make_cfg, model, *extra, **kw):
    assert model in STYLE_MODELS  # make_cfg adds TINY + the model's TINY_TABLE row
    return make_cfg(model, *extra, **kw)


# -- growth schedule -----------------------------------------------------------------------------
def test_schedule_stage_and_alpha_at_known_image_counts():
    s = GrowthSchedule(resolution=32, fade_images=100, stable_images=200)
    # 4x4: [0, 200); 8x8 fades in over [200, 300), stable [300, 500); 16x16 fades [500, 600) ...
    expected = {0: (0, 1.0), 199: (0, 1.0), 200: (1, 0.0), 250: (1, 0.5), 299: (1, 0.99), 300: (1, 1.0),
                499: (1, 1.0), 500: (2, 0.0), 575: (2, 0.75), 800: (3, 0.0), 850: (3, 0.5),
                900: (3, 1.0), 10**7: (3, 1.0)}
    for images, (stage, alpha) in expected.items():
        got = s.at(images)
        assert got[0] == stage and got[1] == pytest.approx(alpha), images
    assert s.images_to_full() == 900 and s.num_stages == 4


def test_schedule_without_fade_start_stage_and_errors():
    s = GrowthSchedule(resolution=16, fade_images=0, stable_images=10, start_stage=1)
    assert s.at(0) == (1, 1.0) and s.at(9) == (1, 1.0) and s.at(10) == (2, 1.0)
    assert GrowthSchedule(resolution=16, start_stage=2).at(0) == (2, 1.0)
    with pytest.raises(ValueError, match="start_stage"):
        GrowthSchedule(resolution=16, start_stage=3)
    with pytest.raises(ValueError, match="fade_images"):
        GrowthSchedule(resolution=16, fade_images=-1)


def test_real_images_are_box_downsampled_and_faded_like_the_generator():
    x = torch.randn(2, 3, 16, 16)
    down = downsample_real(x, 8)
    torch.testing.assert_close(down[0, 0, 0, 0], x[0, 0, :2, :2].mean())
    coarse = down.reshape(2, 3, 4, 2, 4, 2).mean((3, 5)).repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(fade_real(down, 0.0), coarse)
    torch.testing.assert_close(fade_real(down, 1.0), down)
    torch.testing.assert_close(fade_real(down, 0.25), 0.75 * coarse + 0.25 * down)
    with pytest.raises(ValueError, match="box-downsample"):
        downsample_real(torch.randn(1, 3, 12, 12), 8)


def test_module_feeds_stage_and_alpha_to_both_networks(make_cfg):
    module = instantiate(style_cfg(make_cfg, "progan").model, _convert_="all")
    module.images_seen = 32 + 16  # halfway through the 8x8 fade-in
    module.update_schedule()
    assert (module.stage, module.alpha) == (1, 0.5)
    real = module.prepare_real(torch.randn(4, 3, 32, 32))
    fake = module.generator_forward(module.sample_z(4))
    assert real.shape == fake.shape == (4, 3, 8, 8)
    assert module.discriminator_forward(real).shape == (4,)
    # samples are full-size (nearest-upsampled) and come from the current stage
    torch.manual_seed(0)
    z = torch.randn(3, 16)
    staged = module.sample_images(3, z=z)
    direct = module.net.generator.eval()(z, stage=1, alpha=0.5)
    # (sample_images clamps to [-1, 1], the images contract; ProGAN's output is linear)
    torch.testing.assert_close(staged, F.interpolate(direct, scale_factor=4, mode="nearest").clamp(-1, 1))


# -- end to end ------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["progan", "stylegan", "stylegan2"])
def test_fast_dev_run_each_model(make_cfg, model):
    result = train(style_cfg(make_cfg, model, "+trainer.fast_dev_run=true"))
    assert result["trainer"].global_step == 1
    expected = {"progan": ProGANModule, "stylegan": StyleGANModule, "stylegan2": StyleGAN2Module}[model]
    assert type(result["module"]) is expected


@pytest.mark.parametrize("name", list("abcdef"))
def test_fast_dev_run_ablation_configs(make_cfg, name):
    cfg = make_cfg("stylegan", *TINY, f"experiment=stylegan_ablation/{name}", *TINY_ABLATION,
                   "+trainer.fast_dev_run=true", tiny=False)
    validate_config(cfg)
    result = train(cfg)
    module = result["module"]
    assert result["trainer"].global_step == 1 and type(module) is StyleGANModule
    cfg_net = module.net.config
    assert {k: getattr(cfg_net, k) for k in ABLATION_CONFIGS[name.upper()]} == ABLATION_CONFIGS[name.upper()]
    # A trains as ProGAN (WGAN-GP + drift); B..F with the logistic loss and R1
    if name == "a":
        assert (module.loss_name, module.objective.gp_weight, module.objective.drift, module.objective.r1_gamma) == \
            ("wgan", 10.0, 0.001, 0.0)
    else:
        assert (module.loss_name, module.objective.r1_gamma) == ("non_saturating", 10.0)
    # the mixing regularisation is a training knob, set once (F only)
    assert module.objective.style_mixing_prob == ABLATION_STYLE_MIXING[name.upper()]
    g = module.net.generator
    assert (len(g.mapping.layers) == 8) == (name >= "c")
    assert hasattr(g.synthesis.blocks[0][0], "const") == (name >= "d")
    assert (g.synthesis.blocks[1][1].noise is not None) == (name >= "e")


def _final_state(result):
    module = result["module"]
    state = {f"net.{k}": v.clone() for k, v in module.net.state_dict().items()}
    state.update({f"G_ema.{k}": v.clone() for k, v in module.G_ema.state_dict().items()})
    return state


@pytest.mark.parametrize("model", ["progan", "stylegan"])
def test_mid_phase_resume_continues_with_same_stage_alpha_and_weights(make_cfg, model, tmp_path):
    # batch 16; 4x4 for 16 images (step 0), 8x8 fades over 48 (steps 1-3), stable 16 (step 4),
    # 16x16 fades in over steps 5-7: the checkpoint after step 6 (96 images) is in that fade.
    # (Step 6 is inside an epoch of 4 batches; see the note in docs/stylegan-ablation.md on epoch ends.)
    common = ["trainer.max_steps=10", "data.dataset.num_images=80", "data.val_size=8",
              "callbacks.model_checkpoint.every_n_train_steps=3", "model.ema_kimg=0.01",
              "model.fade_images=48", "model.stable_images=16"]
    full_run = train(style_cfg(make_cfg, model, *common, output_dir=tmp_path / "full"))
    full = _final_state(full_run)
    part = style_cfg(make_cfg, model, *common, output_dir=tmp_path / "part")
    with open_dict(part):
        part.trainer.max_steps = 6
    part_run = train(part)
    assert part_run["module"].images_seen == 96
    ckpt_path = tmp_path / "part" / "checkpoints" / "step_0000006.ckpt"
    ckpt = load_checkpoint(ckpt_path)
    assert ckpt["genface_images_seen"] == 96
    assert GrowthSchedule(32, 48, 16).at(96) == (2, pytest.approx(1 / 3))

    resumed_cfg = style_cfg(make_cfg, model, *common, f"ckpt_path={ckpt_path}", output_dir=tmp_path / "resumed")
    resumed_module = instantiate(resumed_cfg.model, _convert_="all")
    resumed_module.on_load_checkpoint(ckpt)
    assert (resumed_module.stage, resumed_module.alpha) == (2, pytest.approx(1 / 3))

    resumed = train(resumed_cfg)
    assert resumed["trainer"].global_step == 10
    m_full, m_res = full_run["module"], resumed["module"]
    assert (m_res.images_seen, m_res.stage, m_res.alpha) == (m_full.images_seen, m_full.stage, m_full.alpha) == \
        (160, 3, pytest.approx(1 / 3))
    state = _final_state(resumed)
    assert state.keys() == full.keys()
    for k in full:
        torch.testing.assert_close(state[k], full[k], rtol=0, atol=0, msg=k)


def test_per_resolution_batch_sizes_slice_the_batch(make_cfg):
    # 4x4 uses 8 of each 16-image batch for 32 images (4 steps), then 8x8 (no fade) uses 4
    cfg = style_cfg(make_cfg, "progan", "trainer.max_steps=6", "model.fade_images=0", "model.stable_images=32",
                    "+model.batch_sizes={4: 8, 8: 4}")
    result = train(cfg)
    module = result["module"]
    assert module.images_seen == 4 * 8 + 2 * 4
    assert (module.stage, module.alpha) == (1, 1.0)
    with pytest.raises(ValueError, match="power-of-two"):
        ProGANModule(module.net, batch_sizes={6: 4})


def test_stylegan2_lazy_regularisation_schedule_and_saved_counters(make_cfg, monkeypatch):
    import genface.training.gan as gan_mod
    import genface.training.stylegan as sg_mod

    calls = {"r1": [], "pl": []}
    holder = {}

    def counting(name, fn):
        def wrapped(*args, **kwargs):
            calls[name].append(holder["module"].iteration)
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(gan_mod, "r1_penalty", counting("r1", gan_mod.r1_penalty))
    monkeypatch.setattr(sg_mod, "path_length_penalty", counting("pl", sg_mod.path_length_penalty))
    original_start = StyleGAN2Module.on_train_start

    def on_train_start(self):
        holder["module"] = self
        original_start(self)

    monkeypatch.setattr(StyleGAN2Module, "on_train_start", on_train_start)
    cfg = style_cfg(make_cfg, "stylegan2", "trainer.max_steps=5", "model.objective.r1_every=2", "model.objective.pl_every=3",
                    "callbacks.model_checkpoint.every_n_train_steps=5")
    result = train(cfg)
    module, out = result["module"], result["output_dir"]
    # iterations 0..4: R1 on 0, 2, 4; path length on 0, 3 (validation runs no regulariser)
    assert calls == {"r1": [0, 2, 4], "pl": [0, 3]}
    assert module.pl_steps == 2 and module.iteration == 5
    ckpt = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert ckpt["genface_iteration"] == 5
    assert ckpt["state_dict"]["pl_mean"] == module.pl_mean and module.pl_mean > 0
    # Adam corrected for the lazy intervals (StyleGAN2 App. B)
    opt_g, opt_d = module.optimizers()
    assert opt_d.param_groups[0]["lr"] == pytest.approx(2e-3 * 2 / 3)
    assert opt_g.param_groups[0]["lr"] == pytest.approx(2e-3 * 3 / 4)
    assert opt_g.param_groups[0]["betas"][1] == pytest.approx(0.99 ** 0.75)


class _LinearGenerator(torch.nn.Module):
    """A generator with an analytic Jacobian: ws (N, 2, 3) -> images = (ws.flatten(1) @ A) as (N, 1, 2, 3)."""

    def __init__(self):
        super().__init__()
        self.A = torch.nn.Parameter(torch.randn(6, 6))
        self.z_dim = 3

    def mapping(self, z, update_w_avg=None):
        return z[:, None, :].repeat(1, 2, 1) * 2.0

    def synthesis(self, ws):
        return (ws.flatten(1) @ self.A).view(-1, 1, 2, 3)


def test_path_length_penalty_matches_analytic_jacobian_and_updates_mean():
    g, z = _LinearGenerator(), torch.randn(5, 3)
    pl_mean = torch.zeros(())
    torch.manual_seed(1)
    penalty, lengths = path_length_penalty(g, z, pl_mean, pl_decay=0.01)
    torch.manual_seed(1)
    y = torch.randn(5, 1, 2, 3) / math.sqrt(6)
    jty = (y.flatten(1) @ g.A.detach().T).view(5, 2, 3)  # d<G(ws), y>/d ws
    expected = jty.square().sum(2).mean(1).sqrt()
    torch.testing.assert_close(lengths.detach(), expected)
    torch.testing.assert_close(pl_mean, 0.01 * expected.mean())
    torch.testing.assert_close(penalty.detach(), (expected - 0.01 * expected.mean()).square().mean())
    penalty.backward()  # differentiable w.r.t. the generator's weights
    assert g.A.grad is not None and torch.isfinite(g.A.grad).all()
    before = pl_mean.clone()
    path_length_penalty(g, z, pl_mean, pl_decay=0.5)
    assert not torch.equal(before, pl_mean)


def test_stylegan_ema_copies_w_avg_and_metric_inputs_offer_a_model(make_cfg):
    result = train(style_cfg(make_cfg, "stylegan", "trainer.max_steps=3"))
    module = result["module"]
    w_avg = module.net.generator.mapping.w_avg
    assert w_avg.abs().sum() > 0
    torch.testing.assert_close(module.G_ema.mapping.w_avg, w_avg, rtol=0, atol=0)
    inputs = module.metric_inputs()
    model = inputs["model"]
    assert isinstance(model, StagedGenerator) and model.z_dim == 16 and model.generator is module.G_ema
    ws = model.mapping(torch.randn(2, 16))
    assert model.synthesis(ws, noise_mode="const").shape == (2, 3, 32, 32)
    assert inputs["generator_fn"](2, 0).shape == (2, 3, 32, 32)


def test_stylegan_truncation_at_sampling(make_cfg):
    module = instantiate(style_cfg(make_cfg, "stylegan", "model.sample_truncation_psi=0.0",
                                   "model.growing=false", "model.ema_kimg=null").model, _convert_="all")
    module.net.generator.mapping.w_avg.normal_()
    module.net.generator.synthesis.requires_grad_(False)
    images = module.sample_images(3, seed=0)
    # psi = 0: every sample is the image of w_avg (noise off is not needed: compare ws instead)
    staged = module.staged()
    ws = staged.mapping(torch.randn(3, 16))
    torch.testing.assert_close(ws, module.net.generator.mapping.w_avg.expand_as(ws))
    assert images.shape == (3, 3, 32, 32)


def test_stylegan2_metric_inputs_and_mixing(make_cfg):
    module = instantiate(style_cfg(make_cfg, "stylegan2", "model.objective.style_mixing_prob=0.0",
                                   "model.ema_kimg=null").model, _convert_="all")
    assert module._mixing_prob() == 0.0
    inputs = module.metric_inputs()
    assert inputs["model"] is module.net.generator  # no G_ema (ema_kimg=null)
    assert inputs["model"].synthesis(inputs["model"].mapping(torch.randn(2, 16))).shape == (2, 3, 32, 32)


@pytest.mark.parametrize("model", ["progan", "stylegan", "stylegan2"])
def test_compare_presets_compose_and_build(make_cfg, model):
    cfg = make_cfg(model, f"experiment=compare/{model}", "data.resolution=32", tiny=False)
    validate_config(cfg)
    module = instantiate(cfg.model, _convert_="all")
    assert module.net.z_dim == 128
    if model != "stylegan2":
        # 32 px is fully faded in within the first half of the comparison's default budget
        from importlib import resources

        from omegaconf import OmegaConf

        demo = OmegaConf.load(resources.files("genface.configs") / "compare.yaml")
        assert module.schedule.images_to_full() == 8000 <= demo.budget_images / 2


def test_ablation_script_trains_each_config_and_writes_the_table(synthetic_cache, tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "experiments" / "stylegan_ablation.py"
    spec = importlib.util.spec_from_file_location("stylegan_ablation", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "ablation"
    rows = script.main(["--configs", "a", "d", "--steps", "3", "--batch-size", "8", "--num-images", "64",
                        "--fmap-base", "64", "--fmap-max", "16", "--z-dim", "16", "--metrics", "--grid", "4",
                        "--override", "data.val_size=8", "--out", str(out)])
    assert [r["config"] for r in rows] == ["A", "D"]
    assert rows[0]["loss"] == "wgan" and rows[1]["loss"] == "non_saturating"
    assert all(r["steps"] == 3 and r["images_seen"] == 24 for r in rows)
    table = (out / "table.md").read_text()
    assert "| A | baseline ProGAN | 7.79 | 8.04 |" in table and "| D |" in table
    assert (out / "samples_a.png").is_file() and (out / "results.json").is_file()
    # the default schedule reaches the last stage within the budget
    assert script.default_schedule(300, 32, 32) == (822, 822)
    assert GrowthSchedule(32, 822, 822).images_to_full() <= 0.6 * 300 * 32
