"""Every config group composes and validates; sweeps, unknown names and typed errors."""

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from hydra.utils import instantiate

from genface.config import ConfigError, validate_config
from tests.conftest import compose_config

CONFIGS = Path(str(resources.files("genface.configs")))


def group_options(group: str) -> list[str]:
    return sorted(p.relative_to(CONFIGS / group).with_suffix("").as_posix()
                  for p in (CONFIGS / group).rglob("*.yaml"))


def test_configs_ship_inside_the_package():
    assert (CONFIGS / "train.yaml").is_file() and (CONFIGS / "compare.yaml").is_file()
    for group in ["data", "model", "trainer", "logger", "callbacks", "experiment", "hparams_search", "debug", "paths"]:
        assert group_options(group), group


@pytest.mark.parametrize("model", group_options("model"))
def test_every_model_config_composes_validates_and_instantiates(model, tmp_path):
    cfg = compose_config("train", [f"model={model}"], tmp_path)
    validate_config(cfg)
    module = instantiate(cfg.model, _convert_="all")
    assert hasattr(module, "net") and sum(p.numel() for p in module.net.parameters()) > 0


@pytest.mark.parametrize("group", ["data", "trainer", "logger", "callbacks", "debug", "paths"])
def test_every_option_of_each_group_composes_and_validates(group, tmp_path):
    for option in group_options(group):
        extra = ["data.path=/tmp", "data.dir_a=/tmp", "data.dir_b=/tmp"] if group == "data" else []
        cfg = compose_config("train", [f"{group}={option}"], tmp_path)
        for o in extra:  # fill the data paths that some data configs require
            key = o.split("=")[0].split(".")[1]
            if key in cfg.data:
                cfg.data[key] = "/tmp"
        validate_config(cfg)


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_every_experiment_composes_and_validates(experiment, tmp_path):
    cfg = compose_config("train", [f"experiment={experiment}"], tmp_path)
    validate_config(cfg)


def test_hparams_search_composes(tmp_path):
    for option in group_options("hparams_search"):
        model = option.split("_")[0]
        cfg = compose_config("train", [f"model={model}", f"hparams_search={option}"], tmp_path)
        assert cfg.optimized_metric


def test_schema_rejects_wrong_top_level_types(tmp_path):
    with pytest.raises(Exception, match="seed"):
        compose_config("train", ["seed=abc"], tmp_path)
    with pytest.raises(Exception, match="not_a_key"):
        compose_config("train", ["not_a_key=1"], tmp_path)


def test_data_config_type_error_is_clear(tmp_path):
    cfg = compose_config("train", ["data.batch_size=many"], tmp_path)
    with pytest.raises(ConfigError, match="batch_size"):
        validate_config(cfg)


def _cli(args, tmp_path, timeout=600):
    env = {**os.environ, "GENFACE_LOG_DIR": str(tmp_path / "logs"), "WANDB_MODE": "offline"}
    return subprocess.run([sys.executable, "-m", "genface.cli.train", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=tmp_path)


def test_unknown_model_lists_the_valid_ones(tmp_path):
    r = _cli(["model=nope"], tmp_path)
    assert r.returncode != 0
    assert "nope" in r.stderr and "dcgan" in r.stderr and "vae" in r.stderr


@pytest.mark.slow
def test_sweep_runs_every_job_in_its_own_folder(tmp_path, synthetic_cache):
    from tests.conftest import TINY

    r = _cli(["-m", "model=dcgan,vae", "seed=1,2", "debug=fdr", *[o for o in TINY if not o.startswith("~") and "model_checkpoint" not in o]],
             tmp_path, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = sorted((tmp_path / "logs").glob("debug/multiruns/*/*/.hydra/overrides.yaml"))
    assert len(jobs) == 4
    overrides = sorted(p.read_text() for p in jobs)
    assert sum("model=vae" in o for o in overrides) == 2 and sum("seed=2" in o for o in overrides) == 2
