"""``genface-train``: train any model on any data with Hydra overrides.

    genface-train model=dcgan data=synthetic_faces
    genface-train model=vae trainer=gpu trainer.precision=bf16-mixed
    genface-train -m model=dcgan,vae seed=1,2          # a sweep
    genface-train ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt   # resume
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from genface.cli import _guard
from genface.cli._guard import check_writable
from genface.config import register_configs, validate_config
from genface.training.checkpoint import latest_checkpoint

register_configs()

# Lightning warns that, with manual optimisation, step checkpoints hold the weights after the
# step: that is what genface wants (a resumed run continues from there).
warnings.filterwarnings("ignore", message=".*Using ModelCheckpoint with manual optimization.*")
warnings.filterwarnings("ignore", message=".*Experiment logs directory.*exists and is not empty.*")
warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
# genface's datamodule carries the position in the epoch in the checkpoint (FaceDataModule.state_dict),
# which Lightning's check for stateful dataloaders does not see.
warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")


def _instantiate_dict(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every non-null ``_target_`` entry of a dict-of-configs group."""
    if not cfg:
        return []
    return [instantiate(v) for v in cfg.values() if v is not None and "_target_" in v]


def output_dir(cfg: DictConfig) -> Path:
    try:
        return Path(cfg.paths.output_dir)
    except Exception:  # outside a Hydra run (compose API): fall back on the trainer's root
        return Path(cfg.trainer.get("default_root_dir") or ".")


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train from a composed config; returns the final metrics, the wall time and the trainer.

    Used by ``genface-train`` and by ``genface-compare`` (which composes one config per model).
    """
    validate_config(cfg)
    out = check_writable(output_dir(cfg))
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.model, _convert_="all")  # plain lists/dicts: checkpoints stay weights_only-safe
    if cfg.get("divergence") is not None and hasattr(module, "configure_divergence"):
        module.configure_divergence(**cfg.divergence)
    callbacks = _instantiate_dict(cfg.get("callbacks"))
    loggers = _instantiate_dict(cfg.get("logger"))
    if not loggers:  # nothing to report learning rates to (logger=none)
        callbacks = [c for c in callbacks if type(c).__name__ != "LearningRateMonitor"]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path == "last":  # the newest of last.ckpt and step_*.ckpt (a kill may fall between them)
        ckpt_path = str(latest_checkpoint(out / "checkpoints"))
    if loggers:
        for lg in loggers:
            lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    start = time.perf_counter()
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    finally:
        _finish_wandb(loggers)
    wall = time.perf_counter() - start
    if cfg.get("export_pretrained") and trainer.is_global_zero and not trainer.fast_dev_run:
        module.export_pretrained(out / "pretrained")
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
    return {"metrics": metrics, "wall_time_s": wall, "trainer": trainer, "module": module,
            "datamodule": datamodule, "output_dir": out}


def _finish_wandb(loggers: list[Any]) -> None:
    """Close the W&B run so that the next job of a multirun starts a fresh one."""
    if any(type(lg).__name__ == "WandbLogger" for lg in loggers):
        import wandb

        wandb.finish()


@hydra.main(version_base="1.3", config_path="pkg://genface.configs", config_name="train")
@_guard.report_errors
def hydra_main(cfg: DictConfig) -> float | None:
    result = train(cfg)
    metric = cfg.get("optimized_metric")
    if metric:
        if metric not in result["metrics"]:
            raise KeyError(f"optimized_metric {metric!r} was not logged; logged: {sorted(result['metrics'])}")
        return result["metrics"][metric]
    return None


def main() -> float | None:
    """``genface-train``: checks the output folder before Hydra starts (genface/cli/_guard.py)."""
    return _guard.run_hydra(hydra_main, "train", "genface-train")


if __name__ == "__main__":
    main()
