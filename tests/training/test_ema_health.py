"""EMA measured in images (NVlabs ema_kimg with ramp-up) and the collapse/divergence detector."""

import math

import pytest
import torch
from omegaconf import open_dict

from genface.cli.train import train
from genface.training.health import STATUSES, Health, assess_health, sample_stats
from genface.training.objective import GeneratorEMA, ema_beta

# -- ema_kimg ------------------------------------------------------------------------------


def test_ema_beta_is_a_half_life_in_images_with_ramp_up():
    # no ramp-up: a half-life of 10k images; after 10k images in batches of 64 the weight left is 1/2
    beta = ema_beta(64, 50_000, ema_kimg=10)
    assert beta == pytest.approx(0.5 ** (64 / 10_000))
    assert beta ** (10_000 / 64) == pytest.approx(0.5)
    # ramp-up: the half-life is min(ema_kimg * 1000, images_seen * rampup)
    assert ema_beta(64, 20_000, ema_kimg=10, ema_rampup=0.05) == pytest.approx(0.5 ** (64 / 1000))
    assert ema_beta(64, 10**7, ema_kimg=10, ema_rampup=0.05) == pytest.approx(0.5 ** (64 / 10_000))
    # the first update (nothing seen yet) copies the weights
    assert ema_beta(64, 0, ema_kimg=10, ema_rampup=0.05) == 0.0
    # the same images give the same average whatever the batch: 2 steps of 32 = 1 step of 64
    assert ema_beta(32, 50_000, 10) ** 2 == pytest.approx(ema_beta(64, 50_000, 10))


def _dcgan_module(**kw):
    from genface.models.dcgan import DCGAN
    from genface.training.gan import GANModule

    return GANModule(DCGAN(resolution=32, ngf=4, ndf=4, z_dim=8), **kw)


def test_generator_ema_with_ema_kimg_follows_the_formula():
    torch.manual_seed(0)
    gen = torch.nn.Linear(3, 2)
    gen.register_buffer("counter", torch.zeros(()))
    expected = None
    seen = 0

    def step(g):
        with torch.no_grad():
            g.weight.add_(1.0)
            g.counter.add_(1)

    ema = GeneratorEMA(ema_kimg=0.1, ema_rampup=0.5)
    copy = GeneratorEMA.copy_of(gen)
    for batch in (16, 16, 8, 32):
        step(gen)
        beta = ema_beta(batch, seen, 0.1, 0.5)
        expected = gen.weight.detach().clone() if expected is None else torch.lerp(expected, gen.weight.detach(), 1 - beta)
        ema.update(copy, gen, batch)
        seen += batch
    torch.testing.assert_close(copy.weight, expected)
    assert ema.images_seen == 72
    # buffers are copied, not averaged
    assert float(copy.counter) == 4.0
    # the average lags the weights (beta > 0 after the first step)
    assert not torch.allclose(copy.weight, gen.weight)
    # checkpoint round trip through the module keeps the image counter and G_ema (exact resume)
    module, ckpt = _dcgan_module(ema_kimg=0.1, ema_rampup=0.5), {}
    module.ema.images_seen = 72
    module.on_save_checkpoint(ckpt)
    ckpt["state_dict"] = module.state_dict()
    module2 = _dcgan_module(ema_kimg=0.1, ema_rampup=0.5)
    module2.on_load_checkpoint(ckpt)
    assert module2.ema.images_seen == 72 and any(k.startswith("G_ema.") for k in ckpt["state_dict"])


def test_ema_rampup_is_the_warm_up():
    """The ramp-up (half-life at most images_seen * rampup) is the warm-up: the first update copies
    the weights, and the average follows them closely while few images have been seen."""
    gen = torch.nn.Linear(2, 2, bias=False)
    w0 = gen.weight.detach().clone()
    ema, copy = GeneratorEMA(ema_kimg=10, ema_rampup=0.5), GeneratorEMA.copy_of(gen)
    e, seen = None, 0
    for n in (1, 2, 3):
        with torch.no_grad():
            gen.weight.add_(1.0)
        d = 0.0 if seen == 0 else 0.5 ** (4 / min(10_000, seen * 0.5))
        e = w0 + n if e is None else torch.lerp(e, w0 + n, 1 - d)
        ema.update(copy, gen, 4)
        seen += 4
    torch.testing.assert_close(copy.weight, e)


def test_ema_rejects_bad_arguments():
    with pytest.raises(ValueError, match="ema_kimg"):
        GeneratorEMA(ema_kimg=-1)
    with pytest.raises(ValueError, match="ema_rampup"):
        GeneratorEMA(ema_kimg=1, ema_rampup=0)


def _ema_state(result):
    module = result["module"]
    return {k: v.clone() for k, v in module.G_ema.state_dict().items()}, module.ema.images_seen


def test_ema_kimg_resume_continues_exactly(make_cfg, tmp_path):
    """A DCGAN run with ema_kimg stopped at step 4 and resumed to 6 has the same EMA as an uninterrupted one."""
    common = ["trainer.max_steps=6", "data.dataset.num_images=80", "data.val_size=8",
              "callbacks.model_checkpoint.every_n_train_steps=2", "model.ema_kimg=0.05",
              "model.ema_rampup=0.5"]
    full, full_seen = _ema_state(train(make_cfg("dcgan", *common, output_dir=tmp_path / "full")))
    part = make_cfg("dcgan", *common, output_dir=tmp_path / "part")
    with open_dict(part):
        part.trainer.max_steps = 4
    train(part)
    ckpt = tmp_path / "part" / "checkpoints" / "step_0000004.ckpt"
    resumed, seen = _ema_state(train(make_cfg("dcgan", *common, f"ckpt_path={ckpt}", output_dir=tmp_path / "res")))
    assert seen == full_seen == 6 * 16
    for k in full:
        torch.testing.assert_close(resumed[k], full[k], rtol=0, atol=0, msg=k)


# -- health --------------------------------------------------------------------------------


def _faces(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 16, 16, generator=g) * 2 - 1) * 0.8


def test_health_ok_for_data_like_samples():
    real = _faces()
    h = assess_health({"d_loss": 1.2, "g_loss": 0.9}, {"msssim_pairs1k": 0.21, "msssim_pairs1k/reference": 0.19},
                      samples=_faces(seed=1), reference=real)
    assert h.ok and h.reasons == [] and str(h) == "ok"
    assert h.stats["sample_spread"] == pytest.approx(h.stats["reference_spread"], rel=0.2)


def test_health_flags_identical_samples_as_collapsed():
    real = _faces()
    same = _faces(1).expand(32, -1, -1, -1) + 0.01 * torch.randn(32, 3, 16, 16)
    h = assess_health(samples=same, reference=real)
    assert h.status == "collapsed" and "nearly identical" in h.reasons[0]


def test_health_flags_flat_samples_and_msssim_collapse():
    real = _faces()
    grey = 0.1 * torch.rand(32, 1, 1, 1).expand(32, 3, 16, 16).contiguous()
    h = assess_health(samples=grey, reference=real)
    assert h.status == "collapsed" and any("flat" in r for r in h.reasons)
    h = assess_health(metrics={"msssim_pairs1k": 0.8, "msssim_pairs1k/reference": 0.19})
    assert h.status == "collapsed" and "0.595" in h.reasons[0]
    # just below the line (half-way from the data's 0.19 to 1) is fine
    assert assess_health(metrics={"msssim_pairs1k": 0.59, "msssim_pairs1k/reference": 0.19}).ok


def test_health_flags_divergence():
    assert assess_health({"d_loss": float("nan"), "g_loss": 1.0}).status == "diverged"
    assert assess_health(metrics={"fsd_synth1k": float("inf")}).status == "diverged"
    nan = torch.full((4, 3, 8, 8), float("nan"))
    assert assess_health(samples=nan).status == "diverged"
    saturated = torch.sign(torch.randn(8, 3, 8, 8))
    h = assess_health(samples=saturated, reference=_faces(8))
    assert h.status == "diverged" and "saturated" in h.reasons[0]


def test_health_discriminator_wins_is_suspect_only_for_the_logistic_loss():
    losses = {"d_loss": 0.05, "g_loss": 5.7}
    assert assess_health(losses).status == "suspect"
    assert assess_health(losses, gan_loss="wgan").ok
    assert assess_health({"d_loss": 0.5, "g_loss": 5.7}).ok
    # the worst finding decides the status; every finding is listed
    h = assess_health({"d_loss": 0.05, "g_loss": 5.7}, {"msssim_pairs1k": 0.9, "msssim_pairs1k/reference": 0.2})
    assert h.status == "collapsed" and len(h.reasons) == 2
    assert h.to_dict()["status"] == "collapsed" and STATUSES[-1] == "diverged"


def test_sample_stats_validates_and_health_flag_keeps_the_worst():
    with pytest.raises(ValueError):
        sample_stats(torch.zeros(1, 3, 4, 4))
    h = Health()
    h.flag("collapsed", "a")
    h.flag("suspect", "b")
    assert h.status == "collapsed" and h.reasons == ["a", "b"] and not h.ok
    assert math.isnan(sample_stats(torch.full((2, 1, 2, 2), float("inf")))["spread"])
