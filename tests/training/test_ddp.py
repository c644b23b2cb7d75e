"""Distributed and parallel runs on CPU: Lightning DDP (gloo, 2 processes), Hydra multirun with
DDP (one folder per job, no duplicates), DDP resume, the joblib launcher, the SLURM example config.

Sharding of the data order across ranks is unit-tested in tests/training/test_robustness.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from genface.training.checkpoint import load_checkpoint
from genface.training.distributed import HydraDDPStrategy, child_rank_command
from tests.conftest import TINY, TINY_MODEL, compose_config

DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
# the model-specific tiny widths, valid for both models at once (a sweep shares its overrides)
BOTH = ["model.net.z_dim=8"]


def run_cli(args: list[str], tmp_path: Path, cache: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "GENFACE_LOG_DIR": str(tmp_path / "logs"), "GENFACE_CACHE": str(cache),
           "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    flags = [a for a in args if a == "-m"]  # Hydra's flags go before the overrides
    overrides = [a for a in args if a != "-m"]
    r = subprocess.run([sys.executable, "-m", "genface.cli.train", *flags, "logger=csv", *TINY, *overrides], env=env,
                       capture_output=True, text=True, timeout=timeout, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]
    return r


def check_job_folder(job: Path, steps: int = 4, ddp: bool = True) -> None:
    """One job's outputs: checkpoints, logs and the exported net, all in ``job``."""
    ckpts = sorted(p.name for p in (job / "checkpoints").glob("*.ckpt"))
    assert ckpts == ["last.ckpt"] + [f"step_{s:07d}.ckpt" for s in range(2, steps + 1, 2)], ckpts
    assert load_checkpoint(job / "checkpoints" / "last.ckpt")["global_step"] == steps
    assert (job / "pretrained" / "model.safetensors").is_file()
    metrics = (job / "metrics.csv").read_text()
    assert "val/" in metrics  # validation metrics (sync_dist=True) were logged by rank 0
    if ddp:  # rank 1 ran as a single run of this job, in this folder (its Hydra log is here)
        assert (job / "train_ddp_rank1.log").is_file()


# ---------------------------------------------------------------------------------------------
# fast: the child-rank command and the strategy's construction
# ---------------------------------------------------------------------------------------------


def test_child_rank_command_reruns_this_job_only_in_its_folder(tmp_path):
    hc = OmegaConf.create({
        "runtime": {"output_dir": str(tmp_path / "multiruns" / "x" / "1"), "cwd": str(tmp_path)},
        "job": {"name": "train", "config_name": "train"},
        # inside a multirun job the sweep list model=dcgan,vae is already expanded to one value
        "overrides": {"task": ["model=vae", "trainer=ddp", "trainer.devices=2"],
                      "hydra": ["hydra/launcher=joblib", "hydra.sweep.dir=/somewhere"]},
    })
    cmd = child_rank_command(hc, 1, "genface.cli.train")
    assert cmd[:3] == [sys.executable, "-m", "genface.cli.train"]
    assert "-m" not in cmd[3:] and "--multirun" not in cmd
    assert "model=vae" in cmd and not any("dcgan" in c for c in cmd)
    assert f'hydra.run.dir="{tmp_path / "multiruns" / "x" / "1"}"' in cmd
    assert "hydra.output_subdir=null" in cmd and "hydra.job.name=train_ddp_rank1" in cmd
    assert not any(c.startswith("hydra/launcher") or c.startswith("hydra.sweep") for c in cmd)


def test_ddp_config_builds_the_hydra_aware_strategy(tmp_path, synthetic_cache):
    from hydra.utils import instantiate

    cfg = compose_config("train", ["model=dcgan", *DDP], tmp_path / "run")
    assert cfg.trainer.sync_batchnorm is False  # SyncBatchNorm needs CUDA
    trainer = instantiate(cfg.trainer, callbacks=[], logger=False)
    assert isinstance(trainer.strategy, HydraDDPStrategy)
    assert trainer.world_size == 2 and trainer.strategy._get_process_group_backend() == "gloo"


def test_slurm_example_composes(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="genface.configs", version_base="1.3"):
        cfg = compose("train", overrides=["experiment=slurm_example"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    # one SLURM task per GPU: the scheduler starts every rank, Lightning's SLURMEnvironment joins them
    assert launcher.tasks_per_node == cfg.trainer.devices and launcher.nodes == cfg.trainer.num_nodes
    assert launcher.gpus_per_node == cfg.trainer.devices
    assert cfg.trainer.strategy._target_.endswith("HydraDDPStrategy")


# ---------------------------------------------------------------------------------------------
# slow: real 2-process runs (gloo) through genface-train
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_multirun_with_ddp_trains_dcgan_and_vae_one_folder_per_job(tmp_path, synthetic_cache):
    """``genface-train -m model=dcgan,vae trainer=ddp trainer.accelerator=cpu trainer.devices=2``:
    each job trains on 2 gloo processes; the child rank joins the job's sweep sub-folder instead
    of opening a folder (and a sweep) of its own; the second job launches its own ranks."""
    r = run_cli(["-m", "model=dcgan,vae", *DDP, *BOTH], tmp_path, synthetic_cache)
    assert r.stderr.count("Starting with 2 processes") + r.stdout.count("Starting with 2 processes") == 2
    logs = tmp_path / "logs" / "train"
    assert not (logs / "runs").exists()  # no stray single-run folders from child ranks
    sweeps = list((logs / "multiruns").iterdir())
    assert len(sweeps) == 1
    jobs = sorted(p for p in sweeps[0].iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1"]  # exactly one folder per job
    for job, model in zip(jobs, ["dcgan", "vae"], strict=True):
        assert f"model={model}" in (job / ".hydra" / "overrides.yaml").read_text()
        check_job_folder(job)
    assert "val/recon_mae" in (jobs[1] / "metrics.csv").read_text()


@pytest.mark.slow
def test_ddp_run_resumes_in_its_folder(tmp_path, synthetic_cache):
    """A DDP DCGAN run of 4 steps, then resumed to 6 with ckpt_path=last in the same folder."""
    run = tmp_path / "run"
    args = ["model=dcgan", *DDP, *TINY_MODEL["dcgan"], f"hydra.run.dir={run}"]
    run_cli(args, tmp_path, synthetic_cache)
    check_job_folder(run)
    run_cli([*args, "trainer.max_steps=6", "ckpt_path=last"], tmp_path, synthetic_cache)
    check_job_folder(run, steps=6)
    pos = load_checkpoint(run / "checkpoints" / "last.ckpt")["FaceDataModule"]
    # the data position travels in the checkpoint: 116 images / 2 ranks / batch 16 = 3 batches an epoch
    assert pos["epoch"] * 3 + pos["batches"] == 6, pos
    assert not (tmp_path / "logs").exists()  # the child ranks opened no folder of their own


@pytest.mark.slow
def test_joblib_launcher_runs_a_local_parallel_sweep(tmp_path, synthetic_cache):
    """``genface-train -m hydra/launcher=joblib hydra.launcher.n_jobs=2 model=dcgan,vae``."""
    run_cli(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model=dcgan,vae", *BOTH],
            tmp_path, synthetic_cache)
    sweeps = list((tmp_path / "logs" / "train" / "multiruns").iterdir())
    jobs = sorted(p for p in sweeps[0].iterdir() if p.is_dir())
    assert len(sweeps) == 1 and [p.name for p in jobs] == ["0", "1"]
    for job in jobs:
        check_job_folder(job, ddp=False)
    hydra_cfg = OmegaConf.load(sweeps[0] / "multirun.yaml")
    assert hydra_cfg.hydra.launcher._target_.endswith("JoblibLauncher")


@pytest.mark.slow
def test_ddp_trains_faceswap(tmp_path, synthetic_cache):
    """FaceSwap (A/B pairs) on 2 gloo processes: one folder, checkpoints and the exported net."""
    run = tmp_path / "run"
    run_cli(["model=faceswap", *DDP, *TINY_MODEL["faceswap"], f"hydra.run.dir={run}"], tmp_path, synthetic_cache)
    check_job_folder(run)
    assert not (tmp_path / "logs").exists()


@pytest.mark.slow
@pytest.mark.parametrize("model", ["progan", "stylegan", "stylegan2"])
def test_ddp_trains_the_style_family(tmp_path, synthetic_cache, model):
    """ProGAN / StyleGAN (growing, image counter) and StyleGAN2 (lazy R1 + path length) on 2 gloo processes."""
    run = tmp_path / "run"
    run_cli([f"model={model}", *DDP, *TINY_MODEL[model], f"hydra.run.dir={run}"], tmp_path, synthetic_cache)
    check_job_folder(run)
    assert not (tmp_path / "logs").exists()
