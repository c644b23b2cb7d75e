"""The GAN objective as one typed config (genface.training.objective), and G_ema owned by the module."""

import json
from importlib import resources

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from genface.models.dcgan import DCGAN
from genface.models.stylegan2 import StyleGAN2, StyleGAN2Generator
from genface.training.gan import GANModule
from genface.training.objective import GANObjective, as_objective
from genface.training.progan import ProGANModule
from genface.training.stylegan import StyleGAN2Module

TINY_SG2 = dict(resolution=16, z_dim=16, w_dim=16, channel_base=64, channel_max=16, mapping_layers=2)


def test_knobs_that_do_nothing_are_rejected_at_config_time():
    with pytest.raises(ValueError, match="gp_weight.*does nothing"):
        GANObjective(loss="non_saturating", gp_weight=10.0)
    assert GANObjective(loss="wgan", gp_weight=10.0).gp_weight == 10.0
    with pytest.raises(ValueError, match="unknown GAN loss"):
        GANObjective(loss="bogus")
    with pytest.raises(ValueError, match="r1_every"):
        GANObjective(r1_every=0)
    with pytest.raises(ValueError, match="style_mixing_prob"):
        GANObjective(style_mixing_prob=1.5)
    with pytest.raises(TypeError, match="unknown field"):
        as_objective({"gp_wieght": 1.0})
    net = DCGAN(resolution=32, ngf=4, ndf=4, z_dim=8)
    with pytest.raises(ValueError, match="pl_weight.*StyleGAN2"):
        GANModule(net, objective={"pl_weight": 2.0})
    with pytest.raises(ValueError, match="style_mixing_prob.*does nothing"):
        GANModule(net, objective={"style_mixing_prob": 0.9})


def test_each_module_lays_the_given_fields_over_its_papers_objective():
    net = DCGAN(resolution=32, ngf=4, ndf=4, z_dim=8)
    assert GANModule(net).objective == GANObjective()
    m = GANModule(net, objective={"loss": "wgan", "gp_weight": 10.0, "n_critic": 5})
    assert (m.loss_name, m.objective.gp_weight, m.objective.n_critic) == ("wgan", 10.0, 5)
    assert m.hparams["objective"]["gp_weight"] == 10.0  # saved with the checkpoint's hyper-parameters
    sg2 = StyleGAN2Module(StyleGAN2(**TINY_SG2), objective={"r1_gamma": 0.01})
    assert (sg2.objective.r1_gamma, sg2.objective.r1_every, sg2.objective.pl_weight) == (0.01, 16, 2.0)
    assert sg2.objective.style_mixing_prob == 0.9


def test_dcgan_yaml_has_no_dead_gp_weight_and_ablation_a_sets_mixing_once(make_cfg):
    node = OmegaConf.load(resources.files("genface.configs") / "model" / "dcgan.yaml")
    assert "gp_weight" not in node and node.objective.gp_weight == 0.0  # no dead gp_weight: 10 any more
    module = instantiate(make_cfg("dcgan").model, _convert_="all")
    assert module.objective.gp_weight == 0.0 and module.objective.loss == "non_saturating"
    a = (resources.files("genface.configs") / "experiment" / "stylegan_ablation" / "a.yaml").read_text()
    assert a.count("style_mixing_prob") == 1
    for name in ("stylegan", "stylegan2"):
        model = (resources.files("genface.configs") / "model" / f"{name}.yaml").read_text()
        assert model.count("style_mixing_prob:") == 1  # in objective only, not in net


def test_generator_behaves_the_same_in_train_and_eval_mode():
    torch.manual_seed(0)
    g = StyleGAN2Generator(**TINY_SG2, fused_modconv=True)
    z = torch.randn(3, 16)
    with torch.no_grad():
        a = g.train()(z, noise_mode="const")
        b = g.eval()(z, noise_mode="const")
    torch.testing.assert_close(a, b)
    assert torch.count_nonzero(g.mapping.w_avg) == 0


def test_module_decides_mixing_and_w_avg_per_pass():
    module = StyleGAN2Module(StyleGAN2(**TINY_SG2), objective={"style_mixing_prob": 1.0})
    calls = []
    original = module.net.generator.mixing_regularization

    def spy(z, ws, prob, *args, **kwargs):
        calls.append(prob)
        return original(z, ws, prob, *args, **kwargs)

    module.net.generator.mixing_regularization = spy
    z = torch.randn(2, 16)
    module.generator_forward(z)  # validation/sampling pass
    assert calls == [0.0] and torch.count_nonzero(module.net.generator.mapping.w_avg) == 0
    module.generator_forward(z, training=True)
    assert calls == [0.0, 1.0] and torch.count_nonzero(module.net.generator.mapping.w_avg) > 0


def test_g_ema_lives_in_the_module_state_and_old_callback_checkpoints_load():
    module = ProGANModule(_tiny_progan())
    assert any(k.startswith("G_ema.") for k in module.state_dict())
    assert module.G_ema is not module.net.generator and not module.G_ema.training
    assert not any(p.requires_grad for p in module.G_ema.parameters())
    # a checkpoint written when the EMA was a callback: its copy moves under G_ema.*
    state = {k: v for k, v in module.state_dict().items() if not k.startswith("G_ema.")}
    old_ema = {k: torch.full_like(v, 0.5) if v.is_floating_point() else v
               for k, v in module.net.generator.state_dict().items()}
    ckpt = {"state_dict": state, "callbacks": {"EMA{'decay': 0.999}": {"ema": old_ema, "images_seen": 48}}}
    fresh = ProGANModule(_tiny_progan())
    fresh.on_load_checkpoint(ckpt)
    fresh.load_state_dict(ckpt["state_dict"])
    assert fresh.ema.images_seen == 48
    first = next(iter(fresh.G_ema.parameters()))
    assert torch.all(first == 0.5)


def _tiny_progan():
    from genface.models.progan import ProGAN

    return ProGAN(resolution=16, fmap_base=64, fmap_max=16, z_dim=16)


def test_saved_configs_with_the_retired_style_mixing_prob_still_load(tmp_path):
    net = StyleGAN2Generator(**TINY_SG2)
    net.save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    meta["config"]["style_mixing_prob"] = 0.9  # as genface wrote it before the objective owned it
    (tmp_path / "config.json").write_text(json.dumps(meta))
    again = StyleGAN2Generator.from_pretrained(tmp_path)
    assert again.config == net.config
    with pytest.raises(TypeError, match="objective.style_mixing_prob"):
        StyleGAN2Generator(**TINY_SG2, style_mixing_prob=0.9)
