"""End to end on CPU: fast_dev_run of every model, outputs of a short run, exact resume,
NaN handling, config validation."""

import json

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import open_dict

from genface.cli.train import train
from genface.config import ConfigError, validate_config
from genface.provenance import is_marked_png
from genface.training.base import NonFiniteLossError
from genface.training.checkpoint import load_checkpoint

MODELS = ["dcgan", "vae"]


@pytest.mark.parametrize("model", MODELS)
def test_fast_dev_run(make_cfg, model):
    cfg = make_cfg(model, "+trainer.fast_dev_run=true")
    result = train(cfg)
    assert result["trainer"].global_step == 1


@pytest.mark.parametrize("model", MODELS)
def test_short_run_writes_checkpoints_grids_logs_and_pretrained(make_cfg, model, tmp_path):
    cfg = make_cfg(model, "callbacks.sample_grid.every_n_steps=2")
    result = train(cfg)
    out = result["output_dir"]
    assert result["trainer"].global_step == 4
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert sorted(p.name for p in (out / "checkpoints").glob("step_*.ckpt")) == [
        "step_0000002.ckpt", "step_0000004.ckpt"]
    grids = sorted((out / "samples").glob("*.png"))
    assert grids and all(is_marked_png(g) for g in grids)
    metrics_csv = (out / "metrics.csv").read_text()
    assert ("train/d_loss" if model == "dcgan" else "train/kl") in metrics_csv
    net = type(result["module"].net).from_pretrained(out / "pretrained")
    assert net.generate(2, seed=0).shape == (2, 3, 32, 32)
    # checkpoints load with weights_only=True (no pickled code)
    ckpt = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 4 and "genface_rng" in ckpt


def _final_state(result):
    module = result["module"]
    state = {f"net.{k}": v.clone() for k, v in module.net.state_dict().items()}
    if getattr(module, "G_ema", None) is not None:
        state.update({f"G_ema.{k}": v.clone() for k, v in module.G_ema.state_dict().items()})
    return state


@pytest.mark.parametrize("stop", [6, 8])
@pytest.mark.parametrize("model", MODELS)
def test_resume_continues_exactly(make_cfg, model, stop, tmp_path):
    """A run stopped at step 6 (mid-epoch 1) or 8 (the last batch of epoch 1) and resumed to 10
    equals an uninterrupted run of 10."""
    common = ["trainer.max_steps=10", "data.dataset.num_images=80", "data.val_size=8",
              "callbacks.model_checkpoint.every_n_train_steps=2"]
    if model != "vae":  # the GANs' G_ema: a half-life of 10 images (beta ~0.33 per batch of 16)
        common.append("model.ema_kimg=0.01")
    # 72 training images / batch 16 = 4 batches an epoch: step 6 is inside the second epoch
    full = _final_state(train(make_cfg(model, *common, output_dir=tmp_path / "full")))
    part = make_cfg(model, *common, output_dir=tmp_path / "part")
    with open_dict(part):
        part.trainer.max_steps = stop
    train(part)
    ckpt = tmp_path / "part" / "checkpoints" / f"step_{stop:07d}.ckpt"
    resumed_cfg = make_cfg(model, *common, f"ckpt_path={ckpt}", output_dir=tmp_path / "resumed")
    resumed = train(resumed_cfg)
    assert resumed["trainer"].global_step == 10
    state = _final_state(resumed)
    assert state.keys() == full.keys()
    for k in full:
        torch.testing.assert_close(state[k], full[k], rtol=0, atol=0, msg=k)


def test_nan_loss_stops_with_diagnostic_and_keeps_checkpoint(make_cfg, tmp_path):
    cfg = make_cfg("vae", "trainer.max_steps=6", "callbacks.model_checkpoint.every_n_train_steps=2")
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.model, _convert_="all")
    trainer = instantiate(cfg.trainer, callbacks=[instantiate(cfg.callbacks.model_checkpoint)], logger=False)
    original = module._losses

    def poisoned(x):
        losses = original(x)
        if trainer.global_step >= 3:
            losses["loss"] = losses["loss"] * float("nan")
        return losses

    module._losses = poisoned
    with pytest.raises(NonFiniteLossError, match="non-finite loss"):
        trainer.fit(module, datamodule=datamodule)
    out = tmp_path / "run"
    diag = json.loads(next(out.glob("nonfinite_step*.json")).read_text())
    assert diag["step"] == 3 and diag["non_finite"] == ["loss"] and "image" in diag["batch"]
    ckpt = load_checkpoint(out / "checkpoints" / "step_0000002.ckpt")
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_nan_policy_skip_drops_the_step(make_cfg):
    cfg = make_cfg("dcgan", "model.nan_policy=skip", "trainer.max_steps=3")
    module = instantiate(cfg.model, _convert_="all")
    before = {k: v.clone() for k, v in module.net.discriminator.state_dict().items()}
    module.d_loss_fn = lambda r, f: (r.mean() + f.mean()) * float("inf")
    module.g_loss_fn = lambda f: f.mean() * float("nan")
    module.configure_divergence(max_skipped_fraction=1.0)  # accept a run skipping everything
    trainer = instantiate(cfg.trainer, callbacks=[], logger=False)
    trainer.fit(module, datamodule=instantiate(cfg.data))
    assert module.skipped_steps == 6  # 3 D steps and 3 G steps skipped
    after = module.net.discriminator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm buffers put back too


@pytest.mark.parametrize("override,message", [
    ("model.net.ngf=abc", "ngf"),
    ("+model.net.bogus=1", "unknown key"),
    ("model.lr_g=fast", "expected float"),
    ("+model.foo=3", "valid keys"),
])
def test_config_errors_are_clear(make_cfg, override, message):
    cfg = make_cfg("dcgan", override)
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg)


def test_unwritable_output_dir_fails_at_start(make_cfg, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = make_cfg("vae", output_dir=blocker / "sub")
    with pytest.raises(PermissionError, match="cannot write"):
        train(cfg)


def test_vae_nan_policy_skip_keeps_weights_and_finishes(make_cfg):
    cfg = make_cfg("vae", "model.nan_policy=skip", "trainer.max_steps=3")
    module = instantiate(cfg.model, _convert_="all")
    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    original = module._losses
    module._losses = lambda x: {k: v * float("nan") for k, v in original(x).items()}
    module.configure_divergence(max_skipped_fraction=1.0)
    trainer = instantiate(cfg.trainer, callbacks=[], logger=False)
    trainer.fit(module, datamodule=instantiate(cfg.data))
    assert module.skipped_steps == 3 and trainer.global_step == 3
    after = module.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
