"""Shared fixtures: Hydra composition of the packaged configs for tests."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from genface.config import register_configs

# One intra-op thread: on a 2-core machine shared with other processes, 2 OpenMP threads can be
# 50x slower (spin-waiting); one thread is at most ~2x slower than two on an idle machine.
torch.set_num_threads(1)
warnings.filterwarnings("ignore", message=".*does not have many workers.*")

# The tiny settings every fast end-to-end test starts from: a small synthetic set at 32 px.
TINY = [
    "data.resolution=32",
    "data.dataset.num_images=128",
    "data.dataset.num_identities=8",
    "data.batch_size=16",
    "data.val_size=16",
    "trainer.max_steps=4",
    "trainer.val_check_interval=2",
    "trainer.limit_val_batches=1",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.sample_grid.every_n_steps=0",
    "callbacks.sample_grid.n=4",
    "callbacks.model_checkpoint.every_n_train_steps=2",
    "~callbacks.rich_progress_bar",
]

@dataclass(frozen=True)
class Tiny:
    """One row of the TINY table: a model at the size every fast test uses.

    Args:
        config: the ``model=<config>`` group the Hydra runs start from.
        net: tiny network fields (``model.net.<k>=<v>``); unit tests build networks from them too.
        module: tiny training-module fields (``model.<k>=<v>``).
        extra: other overrides the model needs (e.g. ``data=synthetic_swap``).
        target: a network class replacing the config's ``model.net._target_`` (a new model's
            row can borrow an existing config until it has its own YAML).
        gan: the network is a generator/discriminator pair (``GANPair``).
        seeded: ``sample_images(n, seed)`` depends on ``seed`` (FaceSwap's swaps do not).
    """

    config: str
    net: dict = field(default_factory=dict)
    module: dict = field(default_factory=dict)
    extra: tuple = ()
    target: str | None = None
    gan: bool = True
    seeded: bool = True

    def overrides(self, **module: object) -> list[str]:
        """The Hydra overrides of this row (``module`` replaces or adds training-module fields)."""
        def value(v):
            return str(v).lower() if isinstance(v, bool) else str(v).replace(" ", "")
        out = list(self.extra)
        if self.target:
            out.append(f"model.net._target_={self.target}")
        out += [f"model.net.{k}={value(v)}" for k, v in self.net.items()]
        out += [f"model.{k}={value(v)}" for k, v in {**self.module, **module}.items()]
        return out


#: THE table of tiny models. Hydra overrides (TINY_MODEL), the unit tests' tiny networks and the
#: model contract (tests/models/test_model_contract.py) all derive from it: a new model gets the whole
#: contract suite by adding one row.
TINY_TABLE: dict[str, Tiny] = {
    "dcgan": Tiny("dcgan", net=dict(ngf=8, ndf=8, z_dim=16)),
    "vae": Tiny("vae", net=dict(widths=[8, 16, 32], z_dim=8), module=dict(kl_warmup_steps=2), gan=False),
    # FaceSwap trains on A/B pairs: two synthetic identities (the TINY data.* overrides apply to them)
    "faceswap": Tiny("faceswap", net=dict(width=0.0625),
                     module=dict(preview_every_n_steps=2, preview_samples=4, swap_eval_samples=8),
                     extra=("data=synthetic_swap", "data.dataset.num_identities=2"), gan=False, seeded=False),
    # progressive models: 32 images per fade / stabilisation phase (two batches of 16)
    "progan": Tiny("progan", net=dict(fmap_base=64, fmap_max=16, z_dim=16),
                   module=dict(fade_images=32, stable_images=32)),
    "stylegan": Tiny("stylegan", net=dict(fmap_base=64, fmap_max=16, z_dim=16, w_dim=16),
                     module=dict(fade_images=32, stable_images=32)),
    "stylegan2": Tiny("stylegan2", net=dict(channel_base=256, channel_max=16, z_dim=16, w_dim=16)),
    # a toy MLP GAN (tests/toy_model.py) on DCGAN's config: this one row gives it the whole contract
    "toy": Tiny("dcgan", net=dict(ngf=8, ndf=8, z_dim=8), target="tests.toy_model.ToyGAN"),
}

#: Hydra overrides of each model's tiny row (derived from TINY_TABLE).
TINY_MODEL: dict[str, list[str]] = {name: row.overrides() for name, row in TINY_TABLE.items()}


@pytest.fixture(scope="session")
def synthetic_cache(tmp_path_factory):
    """One cache folder for every test's synthetic faces (rendered once per session)."""
    path = tmp_path_factory.mktemp("genface_cache")
    old = os.environ.get("GENFACE_CACHE")
    os.environ["GENFACE_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("GENFACE_CACHE", None)
    else:
        os.environ["GENFACE_CACHE"] = old


def compose_config(config_name: str, overrides: list[str], output_dir: Path):
    """Compose ``configs/<config_name>.yaml`` with overrides, output in ``output_dir``."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="genface.configs", version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir)
            del cfg["hydra"]
    return cfg


@pytest.fixture
def make_cfg(tmp_path, synthetic_cache):
    """Compose a tiny training config: ``make_cfg("dcgan", "trainer.max_steps=6")``."""

    def _make(model: str = "dcgan", *extra: str, tiny: bool = True, output_dir: Path | None = None):
        row = TINY_TABLE.get(model)
        overrides = [f"model={row.config if row else model}", "logger=csv"]
        if tiny:
            overrides += TINY + (row.overrides() if row else [])
        elif row and row.target:
            overrides.append(f"model.net._target_={row.target}")
        return compose_config("train", overrides + list(extra), output_dir or tmp_path / "run")

    return _make


def genface_data() -> Path:
    """The real face data folder (env GENFACE_DATA), or skip the test with the reason."""
    root = os.environ.get("GENFACE_DATA")
    if not root:
        pytest.skip("GENFACE_DATA is not set (point it at ../shared/data to run real-face tests)")
    path = Path(root)
    if not path.is_dir():
        pytest.skip(f"GENFACE_DATA={root} is not a folder")
    return path
