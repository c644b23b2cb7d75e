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
from typing import TYPE_CHECKING, Any

from genface.cli import _guard  # standard library only at import time
from genface.cli.help import maybe_print_help

if TYPE_CHECKING:
    from omegaconf import DictConfig

# Hydra, torch and Lightning are imported when a run starts (in main() and train()), not at
# import time: `genface-train --help` (genface.cli.help) and tab completion stay under 2 s.

# Lightning warns that, with manual optimisation, step checkpoints hold the weights after the
# step: that is what genface wants (a resumed run continues from there).
warnings.filterwarnings("ignore", message=".*Using ModelCheckpoint with manual optimization.*")
warnings.filterwarnings("ignore", message=".*Experiment logs directory.*exists and is not empty.*")
warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
# genface's datamodule carries the position in the epoch in the checkpoint (FaceDataModule.state_dict),
# which Lightning's check for stateful dataloaders does not see.
warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")


#: logger class -> (module it needs, the genface extra that installs it)
_LOGGER_EXTRAS = {"WandbLogger": ("wandb", "wandb"), "TensorBoardLogger": ("tensorboard", "tensorboard")}


def _instantiate_dict(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every non-null ``_target_`` entry of a dict-of-configs group (a logger whose
    package is missing fails first with the one-line message naming its extra)."""
    from hydra.utils import instantiate

    from genface.utils import require

    if not cfg:
        return []
    for v in cfg.values():
        cls = str(v.get("_target_", "")).rsplit(".", 1)[-1] if v is not None else ""
        if cls in _LOGGER_EXTRAS:
            require(_LOGGER_EXTRAS[cls][0], _LOGGER_EXTRAS[cls][1], feature=f"the {cls}")
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
    import lightning as L
    import torch
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import LearningRateMonitor
    from omegaconf import OmegaConf

    from genface.config import register_configs, validate_config
    from genface.training.checkpoint import latest_checkpoint

    register_configs()

    validate_config(cfg)
    out = _guard.check_writable(output_dir(cfg))
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.model, _convert_="all")  # plain lists/dicts: checkpoints stay weights_only-safe
    if cfg.get("divergence") is not None and hasattr(module, "configure_divergence"):
        module.configure_divergence(**cfg.divergence)
    callbacks = _instantiate_dict(cfg.get("callbacks"))
    loggers = _instantiate_dict(cfg.get("logger"))
    if not loggers:  # nothing to report learning rates to (logger=none)
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
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
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
    if cfg.get("export_pretrained") and trainer.is_global_zero and not trainer.fast_dev_run:
        module.net.card_info = _card_info(cfg, trainer, module, metrics, wall)  # for the model card
        module.export_pretrained(out / "pretrained")
    return {"metrics": metrics, "wall_time_s": wall, "trainer": trainer, "module": module,
            "datamodule": datamodule, "output_dir": out}


def _card_info(cfg: DictConfig, trainer: Any, module: Any, metrics: dict[str, float], wall: float) -> dict:
    """What the run knows about the trained model, for its README.md (genface.models.card)."""
    from genface.models.card import training_card_info

    seen = getattr(module, "images_seen", None)  # progressive GANs count it exactly
    if seen is None:  # batches drawn x batch size x processes
        # a private fit_loop counter (Lightning 2.x; pyproject bounds lightning < 3 for such uses)
        batches = trainer.fit_loop.epoch_loop._batches_that_stepped
        seen = int(batches * cfg.data.get("batch_size", 0) * trainer.world_size)
    return training_card_info(cfg, images_seen=int(seen), steps=int(trainer.global_step),
                              metrics=metrics, wall_time_s=wall)


def _finish_wandb(loggers: list[Any]) -> None:
    """Close the W&B run so that the next job of a multirun starts a fresh one."""
    if any(type(lg).__name__ == "WandbLogger" for lg in loggers):
        import wandb

        wandb.finish()


@_guard.report_errors
def run(cfg: DictConfig) -> float | None:
    """The Hydra task of ``genface-train``: print the config tree, train, return the swept metric."""
    from genface.cli.config_tree import print_config_tree

    print_config_tree(cfg)
    result = train(cfg)
    metric = cfg.get("optimized_metric")
    if metric:
        if metric not in result["metrics"]:
            raise KeyError(f"optimized_metric {metric!r} was not logged; logged: {sorted(result['metrics'])}")
        return result["metrics"][metric]
    return None


def main() -> float | None:
    """``genface-train``: the help page straight from configs/hydra/help/train.yaml, else the
    Hydra app, after the output folder is checked (genface/cli/_guard.py)."""
    if maybe_print_help("train"):
        return None
    from genface.cli.complete import maybe_complete

    if maybe_complete("train"):  # a tab-completion query, answered from the store
        return None
    import sys

    if not any(a.startswith(("-sc", "--shell-completion", "--info")) for a in sys.argv[1:]):
        # A run: import Lightning before Hydra configures logging, so that Lightning keeps its
        # own stderr handler (it adds one only while the root logger has none) and its
        # messages are not printed a second time through Hydra's handlers. Tab completion
        # (-sc) and --info never train, and skip it to stay fast.
        import lightning.pytorch  # noqa: F401
    import hydra

    from genface.config import register_configs

    register_configs()
    app = hydra.main(version_base="1.3", config_path="pkg://genface.configs", config_name="train")(run)
    return _guard.run_hydra(app, "train", "genface-train")


if __name__ == "__main__":
    main()
