"""Shared fixtures: Hydra composition of the packaged configs for tests."""

from __future__ import annotations

import os
import warnings
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

TINY_MODEL = {
    "dcgan": ["model.net.ngf=8", "model.net.ndf=8", "model.net.z_dim=16"],
    "vae": ["model.net.widths=[8,16,32]", "model.net.z_dim=8", "model.kl_warmup_steps=2"],
    # FaceSwap trains on A/B pairs: two synthetic identities (the TINY data.* overrides apply to them)
    "faceswap": ["data=synthetic_swap", "data.dataset.num_identities=2", "model.net.width=0.0625",
                 "model.preview_every_n_steps=2", "model.preview_samples=4", "model.swap_eval_samples=8"],
    # progressive models: 32 images per fade / stabilisation phase (two batches of 16)
    "progan": ["model.net.fmap_base=64", "model.net.fmap_max=16", "model.net.z_dim=16",
               "model.fade_images=32", "model.stable_images=32"],
    "stylegan": ["model.net.fmap_base=64", "model.net.fmap_max=16", "model.net.z_dim=16", "model.net.w_dim=16",
                 "model.fade_images=32", "model.stable_images=32"],
    "stylegan2": ["model.net.channel_base=256", "model.net.channel_max=16", "model.net.z_dim=16",
                  "model.net.w_dim=16"],
}


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
        overrides = [f"model={model}", "logger=csv"]
        if tiny:
            overrides += TINY + TINY_MODEL.get(model, [])
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
