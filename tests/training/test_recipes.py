"""The demo's recipes: speed changes that must not change the training, and the compare presets."""

import torch

from genface.models.dcgan import DCGAN
from genface.training.gan import _frozen
from genface.training.losses import get_gan_loss


def test_frozen_discriminator_gives_the_same_generator_gradients():
    """The G step with D's requires_grad off (no D weight gradients) updates G exactly as before."""
    torch.manual_seed(0)
    net = DCGAN(resolution=32, ngf=8, ndf=8, z_dim=16)
    _, g_loss = get_gan_loss("non_saturating")
    z = torch.randn(8, 16)

    def g_grads(freeze: bool):
        net.zero_grad(set_to_none=True)
        torch.manual_seed(1)
        if freeze:
            with _frozen(net.discriminator):
                g_loss(net.discriminator(net.generator(z))).backward()
        else:
            g_loss(net.discriminator(net.generator(z))).backward()
        return [p.grad.clone() for p in net.generator.parameters()], [p.grad for p in net.discriminator.parameters()]

    plain_g, plain_d = g_grads(False)
    frozen_g, frozen_d = g_grads(True)
    for a, b in zip(plain_g, frozen_g):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert all(g is not None for g in plain_d) and all(g is None for g in frozen_d)
    # requires_grad is restored afterwards
    assert all(p.requires_grad for p in net.discriminator.parameters())


def _preset(make_cfg, model):
    from hydra.utils import instantiate

    cfg = make_cfg(model, f"experiment=compare/{model}", "data.resolution=32", tiny=False)
    return cfg, instantiate(cfg.model, _convert_="all")


def test_style_family_presets_share_widths_and_measure_ema_in_images(make_cfg):
    """ProGAN, StyleGAN and StyleGAN2 presets: same feature maps per resolution (they differ in
    architecture, not size), EMA half-life 10k images with NVlabs' ramp-up."""
    widths = {}
    for model in ("progan", "stylegan", "stylegan2"):
        cfg, module = _preset(make_cfg, model)
        assert cfg.model.ema_kimg == 10 and cfg.model.ema_rampup == 0.05
        assert module.ema.ema_kimg == 10 and module.G_ema is not None
        c = module.net.generator.config
        widths[model] = ({r: c.channels(r) for r in (4, 8, 16, 32)} if model == "stylegan2"
                         else c.channels())
        assert tuple(module.hparams.betas) == (0.0, 0.99)
    assert widths["progan"] == widths["stylegan"] == widths["stylegan2"] == {4: 64, 8: 32, 16: 16, 32: 8}


def test_stylegan2_preset_is_the_low_resolution_recipe(make_cfg):
    """stylegan2-ada's 32 px recipe (mapping 2, no path length, no mixing) at lr 1e-3 instead of its
    2.5e-3 and R1 gamma 1 (its 256 px configs') instead of 0.01 (the demo's batch 16:
    configs/experiment/compare/stylegan2.yaml)."""
    _, module = _preset(make_cfg, "stylegan2")
    hp, obj = module.hparams, module.objective
    assert obj.pl_weight == 0 and obj.r1_gamma == 1.0 and hp.lr_g == hp.lr_d == 1e-3
    assert module.net.generator.config.mapping_layers == 2 and module._mixing_prob() == 0.0
    # no path-length regulariser: the G optimiser is not lazily corrected, D's is (R1 every 16)
    opt_g, opt_d = module.configure_optimizers()
    assert opt_g.defaults["lr"] == 1e-3
    assert opt_d.defaults["lr"] == 1e-3 * 16 / 17


def test_dcgan_preset_keeps_the_paper_betas_at_a_faster_rate(make_cfg):
    """The paper's Adam betas at lr 5e-4 instead of 2e-4 (configs/experiment/compare/dcgan.yaml)."""
    _, module = _preset(make_cfg, "dcgan")
    assert module.hparams.lr_g == module.hparams.lr_d == 5e-4 and tuple(module.hparams.betas) == (0.5, 0.999)


def test_progan_preset_uses_the_tuned_baseline_loss(make_cfg):
    _, module = _preset(make_cfg, "progan")
    obj = module.objective
    assert module.loss_name == "non_saturating" and obj.gp_weight == 0 and obj.drift == 0 and obj.r1_gamma == 1.0
    assert (module.schedule.start_stage, module.schedule.images_to_full()) == (1, 8000)


def test_stylegan_preset_uses_r1_gamma_one(make_cfg):
    """R1 gamma 1, not NVlabs' 0.0064 rule nor the paper's 10 (configs/experiment/compare/stylegan.yaml)."""
    _, module = _preset(make_cfg, "stylegan")
    assert module.loss_name == "non_saturating" and module.objective.r1_gamma == 1.0


def test_progressive_presets_use_the_faster_learning_rate(make_cfg):
    for model in ("progan", "stylegan"):
        _, module = _preset(make_cfg, model)
        assert module.hparams.lr_g == module.hparams.lr_d == 2.5e-3
