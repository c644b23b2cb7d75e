"""The model contract, tested once for every row of the TINY table (tests/conftest.py).

After diffusers' ``ModelTesterMixin``: every model, whatever its family, must build from its
tiny row, give images of the right shape, reject bad inputs, round-trip through
``save_pretrained``/``from_pretrained``, train (gradients reach its weights), sample
reproducibly from a seed, run ``fast_dev_run`` through ``genface-train``, and resume exactly.
A new model gets all of it by adding one row; the ``toy`` row (tests/toy_model.py, a
two-MLP GAN on DCGAN's config) shows it.
"""

from __future__ import annotations

import pytest
import torch
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf, open_dict

from genface.cli.train import train
from tests.conftest import TINY, TINY_TABLE, compose_config

ROWS = sorted(TINY_TABLE)


def tiny_cfg(name: str, out, *extra: str):
    row = TINY_TABLE[name]
    return compose_config("train", [f"model={row.config}", "logger=csv", *TINY, *row.overrides(), *extra], out)


@pytest.fixture(scope="module", params=ROWS)
def fitted(request, tmp_path_factory, synthetic_cache):
    """One model of the table trained for one step (fast_dev_run), with its weights before."""
    name = request.param
    out = tmp_path_factory.mktemp(f"contract_{name}")
    cfg = tiny_cfg(name, out)
    torch.manual_seed(0)
    module = instantiate(cfg.model, _convert_="all")
    datamodule = instantiate(cfg.data)
    before = {k: v.detach().clone() for k, v in module.net.named_parameters()}
    trainer = instantiate(cfg.trainer, callbacks=[], logger=False, fast_dev_run=True,
                          enable_checkpointing=False)
    trainer.fit(module, datamodule=datamodule)
    return {"name": name, "row": TINY_TABLE[name], "cfg": cfg, "module": module, "before": before,
            "trainer": trainer}


class TestModelContract:
    def test_images_have_the_configured_shape(self, fitted):
        module, cfg = fitted["module"], fitted["cfg"]
        res = cfg.data.resolution
        images = module.sample_images(3, seed=0)
        assert images.shape == (3, 3, res, res)
        assert torch.isfinite(images).all() and images.min() >= -1 and images.max() <= 1
        if fitted["row"].gan:
            logits = module.discriminator_forward(module.prepare_real(images))
            assert logits.shape == (3,)

    def test_bad_inputs_fail_loudly(self, fitted):
        cfg, module = fitted["cfg"], fitted["module"]
        net_cls = get_class(cfg.model.net._target_)
        kwargs = {k: v for k, v in OmegaConf.to_container(cfg.model.net, resolve=True).items() if k != "_target_"}
        with pytest.raises(ValueError, match="resolution"):
            net_cls(**{**kwargs, "resolution": 24})  # checked once, in the config's __post_init__
        with pytest.raises(TypeError, match="unknown field"):
            net_cls(**kwargs, bogus_field=1)
        if fitted["row"].gan:
            with pytest.raises(ValueError):
                module.net.generator(torch.randn(2, module.net.z_dim + 1))

    def test_save_load_round_trip(self, fitted, tmp_path):
        net = fitted["module"].net
        type(net).from_pretrained(net.save_pretrained(tmp_path / "saved"))
        again = type(net).from_pretrained(tmp_path / "saved")
        assert again.config == net.config
        mine, theirs = net.state_dict(), again.state_dict()
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k].cpu(), theirs[k]) for k in mine)

    def test_one_step_reaches_the_weights(self, fitted):
        after = dict(fitted["module"].net.named_parameters())
        changed = [k for k, v in fitted["before"].items() if not torch.equal(v, after[k].detach())]
        assert fitted["trainer"].global_step == 1
        assert changed, "no weight moved in one training step"
        assert all(torch.isfinite(p).all() for p in after.values())
        if fitted["row"].gan:  # both players were trained
            assert any(k.startswith("generator.") for k in changed)
            assert any(k.startswith("discriminator.") for k in changed)

    def test_sampling_is_seeded(self, fitted):
        module = fitted["module"]
        a, b = module.sample_images(4, seed=1), module.sample_images(4, seed=1)
        assert torch.equal(a, b)
        if fitted["row"].seeded:
            assert not torch.equal(a, module.sample_images(4, seed=2))

    def test_fast_dev_run_through_genface_train(self, fitted, tmp_path):
        result = train(tiny_cfg(fitted["name"], tmp_path / "run", "+trainer.fast_dev_run=true"))
        assert result["trainer"].global_step == 1
        assert type(result["module"].net) is type(fitted["module"].net)

    @pytest.mark.slow
    def test_resume_continues_exactly(self, fitted, tmp_path):
        """Stopped after 2 steps and resumed to 4, the whole module state (networks, G_ema,
        running means) equals an uninterrupted run's."""
        name = fitted["name"]
        common = ["trainer.max_steps=4", "callbacks.model_checkpoint.every_n_train_steps=2"]
        full = train(tiny_cfg(name, tmp_path / "full", *common))["module"].state_dict()
        part = tiny_cfg(name, tmp_path / "part", *common)
        with open_dict(part):
            part.trainer.max_steps = 2
        train(part)
        ckpt = tmp_path / "part" / "checkpoints" / "step_0000002.ckpt"
        resumed = train(tiny_cfg(name, tmp_path / "resumed", *common, f"ckpt_path={ckpt}"))
        assert resumed["trainer"].global_step == 4
        state = resumed["module"].state_dict()
        assert state.keys() == full.keys()
        for k in full:
            torch.testing.assert_close(state[k], full[k], rtol=0, atol=0, msg=k)


def test_the_toy_row_is_all_a_new_model_needs():
    """The toy model has no test of its own: its row alone puts it in every contract test above."""
    assert "toy" in ROWS and TINY_TABLE["toy"].target == "tests.toy_model.ToyGAN"
    contract = [n for n in dir(TestModelContract) if n.startswith("test_")]
    assert len(contract) == 7
