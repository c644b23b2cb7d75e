"""``genface-compare``: every model on the same data, budget, seeds and metrics, side by side.

    genface-compare                                         # CPU demo, embedded synthetic faces
    genface-compare models=[dcgan,vae] budget_images=128000 seeds=[0,1]
    genface-compare data_config=folder data_path=../shared/data/utkface_adults resolution=64
    genface-compare trainer_config=gpu resolution=64 budget_images=2000000
    genface-compare budget_images=null budget_seconds=300             # equal wall-clock time
    genface-compare --config-name compare_study                        # the study (docs/compare.md)

For each model it composes ``configs/train.yaml`` with the model's preset
(``configs/experiment/compare/<model>.yaml``), trains it (or reuses a finished run when
``resume=true``), evaluates the metrics that apply (:mod:`genface.metrics`) and writes
``report.md``, ``results.json``, one sample grid per model, a side-by-side grid, the
learning curves and the loss curves into the output folder (rendered by :mod:`genface.report`).
"""

from __future__ import annotations

import json
import math
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra import compose
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict
from rich.console import Console

from genface import report
from genface.cli import _guard
from genface.cli.train import train
from genface.config import register_configs
from genface.errors import GenfaceError, NonFiniteLossError
from genface.provenance import save_png
from genface.report import final_losses, loss_history, run_dir  # noqa: F401  (public here since the first version)
from genface.training.eval_callback import available_needs, metric_kwargs, reference_dataset

#: the terminal's width; 100 columns when the output is not a terminal (a log file, CI)
console = Console() if Console().is_terminal else Console(width=100)


@dataclass
class CompareSchema:
    """Typed keys of ``configs/compare.yaml`` (documented there)."""

    task_name: str = "compare"
    models: list[str] = field(default_factory=lambda: ["dcgan", "vae", "progan", "stylegan", "stylegan2", "faceswap"])
    data_config: str = "synthetic_faces"
    data_path: str | None = None
    resolution: int = 32
    batch_size: int = 16
    budget_images: int | None = 19200
    budget_seconds: float | None = None
    eval_every_images: int = 3200
    eval_metrics: list[str] = field(default_factory=lambda: ["fsd_synth1k", "recon1k"])
    variants: dict[str, list[str]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    trainer_config: str = "cpu"
    metrics: list[str] = field(default_factory=list)
    grid_samples: int = 64
    resume: bool = True
    out_dir: str | None = None
    logger_config: str = "csv"
    overrides: list[str] = field(default_factory=list)
    paths: Any = None


CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def config_choices(group: str) -> str:
    """Names of the configs of a config group (``compare`` for the model presets), for the help page."""
    from genface.cli.help import choices  # one home: the fast help page uses it too

    return choices(group, CONFIG_DIR)


def _register() -> None:
    register_configs()
    ConfigStore.instance().store(name="genface_compare_schema", node=CompareSchema)
    if not OmegaConf.has_resolver("genface.choices"):
        OmegaConf.register_new_resolver("genface.choices", config_choices)


_register()


def count_parameters(net: torch.nn.Module) -> dict[str, int]:
    """Parameters in total and per top-level part (generator, discriminator, encoder, ...)."""
    counts = {"total": sum(p.numel() for p in net.parameters())}
    for name in ("generator", "discriminator", "encoder", "decoder", "decoders"):
        part = getattr(net, name, None)
        if isinstance(part, torch.nn.Module):
            counts[name] = sum(p.numel() for p in part.parameters())
    return counts


def applicable_metrics(names: list[str], inputs: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Split metric names into those this model can supply and the others, with reasons."""
    from genface.metrics import get_metric

    have = available_needs(inputs)
    run, skipped = [], {}
    for name in names:
        spec = get_metric(name)
        missing = set(spec.needs) - have
        reason = f"needs {sorted(missing)}" if missing else spec.unavailable_reason()
        if reason:
            skipped[name] = reason
        else:
            run.append(name)
    return run, skipped


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=float))
    tmp.replace(path)


def reference_key(cfg: DictConfig) -> str:
    """Cache name of the comparison's reference statistics (shared by every model and the curves)."""
    return f"{cfg.data_config}-{cfg.data_path or 'default'}-r{cfg.resolution}"


def planned_steps(cfg: DictConfig) -> int:
    """Training steps of the image budget; -1 = none (the time budget stops training)."""
    if cfg.budget_images:
        return max(1, cfg.budget_images // cfg.batch_size)
    if not cfg.budget_seconds:
        raise ValueError("genface-compare needs budget_images or budget_seconds (or both)")
    return -1


def model_overrides(cfg: DictConfig, model: str) -> list[str]:
    """How a model's training config is chosen: its preset ``experiment=compare/<model>``, or for a
    name in ``variants`` that variant's overrides (e.g. a preset plus a StyleGAN ablation config)."""
    if model in cfg.variants:
        return list(cfg.variants[model])
    return [f"experiment=compare/{model}"]


def train_one(cfg: DictConfig, model: str, seed: int, run_dir: Path) -> dict[str, Any]:
    """Train and evaluate one model with one seed; returns its result row."""
    from genface.metrics import compute_metrics

    steps = planned_steps(cfg)
    every = max(1, steps // 4) if steps > 0 else 250  # validation and checkpoints, in steps
    overrides = [
        *model_overrides(cfg, model),
        f"data={cfg.data_config}",
        f"data.resolution={cfg.resolution}",
        f"data.batch_size={cfg.batch_size}",
        f"trainer={cfg.trainer_config}",
        f"trainer.max_steps={steps}",
        f"trainer.val_check_interval={every}",
        f"trainer.log_every_n_steps={max(1, min(10, steps // 50)) if steps > 0 else 10}",
        f"seed={seed}",
        f"logger={cfg.logger_config}",
        f"task_name=compare_{model}",
        f"callbacks.model_checkpoint.every_n_train_steps={every}",
        "callbacks.sample_grid.every_n_steps=0",
        "+callbacks.throughput._target_=genface.training.callbacks.Throughput",
        "+callbacks.time_budget._target_=genface.training.budget.TimeBudget",
        f"+callbacks.time_budget.max_seconds={cfg.budget_seconds or 'null'}",
    ]
    if cfg.eval_every_images and cfg.eval_metrics:
        overrides += [
            "+callbacks.learning_curve._target_=genface.training.eval_callback.EvalEvery",
            f"+callbacks.learning_curve.metrics=[{','.join(cfg.eval_metrics)}]",
            f"+callbacks.learning_curve.every_n_images={cfg.eval_every_images}",
            f"+callbacks.learning_curve.reference_key={reference_key(cfg)}",
        ]
    if cfg.data_path:
        overrides.append(f"data.path={cfg.data_path}")
    tcfg = compose(config_name="train", overrides=overrides + list(cfg.overrides))
    with open_dict(tcfg):
        tcfg.paths.output_dir = str(run_dir)
    start = time.perf_counter()
    result = train(tcfg)
    module, dm, trainer = result["module"], result["datamodule"], result["trainer"]
    by_type = {type(c).__name__: c for c in trainer.callbacks}
    thr, budget = by_type["Throughput"], by_type["TimeBudget"]
    row: dict[str, Any] = {
        "model": model,
        "seed": seed,
        "net": type(module.net).__name__,
        "parameters": count_parameters(module.net),
        "steps": int(trainer.global_step),
        "images": int(budget.images),
        "stopped_by_time": bool(budget.stopped_early),
        "batch_size": cfg.batch_size,
        "resolution": cfg.resolution,
        "images_per_s": thr.images_per_second,
        "train_time_s": budget.elapsed(trainer),
        "fit_time_s": result["wall_time_s"],
        "final_losses": final_losses(run_dir / "metrics.csv"),
        "skipped_steps": int(getattr(module, "skipped_steps", 0)),
    }
    if "EvalEvery" in by_type:
        row["eval_time_s"] = by_type["EvalEvery"].eval_seconds
    module.eval()
    inputs = module.metric_inputs()
    names, skipped = applicable_metrics(list(cfg.metrics), inputs)
    reference = reference_dataset(dm)
    metrics: dict[str, float] = {}
    if names and reference is not None:
        console.print(f"  evaluating {', '.join(names)}")
        metrics = compute_metrics(names, reference=reference, device=module.device, reference_key=reference_key(cfg),
                                  **metric_kwargs(inputs))
    metrics.update(module.evaluate_extra(dm))
    row["metrics"] = {k: float(v) for k, v in metrics.items() if not k.endswith("/seconds")}
    row["metrics_skipped"] = skipped
    with torch.no_grad():
        images = module.sample_images(cfg.grid_samples, seed=0).float().cpu()
    grid_path = run_dir / "samples.png"
    save_png(_grid(images, cfg.grid_samples), grid_path, {"model": model, "seed": seed}, model=module)
    row["grid"] = str(grid_path)
    row["wall_time_s"] = time.perf_counter() - start
    row.update(training_health(row, images, reference, tcfg.model.get("loss")))
    row["status"] = report.run_status(row)
    _write_json(run_dir / "result.json", row)
    return row


def training_health(row: dict[str, Any], samples: torch.Tensor, reference: Any, gan_loss: str | None) -> dict[str, Any]:
    """``{"status", "health"}`` from :func:`genface.training.health.assess_health` (collapse and
    divergence from the final losses, the metrics and the samples against real images); empty
    where that module is absent (the report then judges from non-finite values alone)."""
    try:
        from genface.training.health import assess_health
    except ImportError:  # the detector arrives with issue 9 part 2 (branch i9r)
        return {}
    real = None
    if reference is not None and len(samples) >= 2:
        n = min(len(samples), len(reference))
        real = torch.stack([reference[i]["image"] for i in range(n)]).float()
    health = assess_health(row["final_losses"], row["metrics"], samples=samples if len(samples) >= 2 else None,
                           reference=real, gan_loss=gan_loss if isinstance(gan_loss, str) else None)
    return {"status": health.status, "health": health.to_dict()}


def failed_row(model: str, seed: int, error: BaseException) -> dict[str, Any]:
    """The result row of a run that raised: status ``diverged`` when training stopped on
    non-finite losses (:class:`~genface.errors.NonFiniteLossError`), else ``failed``; never numbers."""
    from genface.errors import NonFiniteLossError

    return {"model": model, "seed": seed, "status": "diverged" if isinstance(error, NonFiniteLossError) else "failed",
            "metrics": {}, "final_losses": {}, "error": f"{type(error).__name__}: {error}".splitlines()[0][:300]}


def _grid(images: torch.Tensor, n: int) -> torch.Tensor:
    from genface.utils import make_grid

    return make_grid((images + 1) / 2, nrow=int(math.sqrt(n) + 0.5), padding=2, pad_value=1.0)


def _plain(cfg: DictConfig) -> dict[str, Any]:
    """The comparison's own settings as plain data (paths depend on the Hydra run and are left out)."""
    return {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
            for k, v in cfg.items() if k != "paths"}


def environment_line(cfg: DictConfig) -> str:
    device = "cuda" if torch.cuda.is_available() and cfg.trainer_config in ("gpu", "ddp") else "cpu"
    return f"device: {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs"


def _log_wandb(cfg: DictConfig, rows: list[dict[str, Any]], out: Path) -> None:
    import wandb

    from genface.config import wandb_offline

    header, body = report.model_table(rows)
    run = wandb.init(project="genface", name="compare", dir=str(out), mode="offline" if wandb_offline() else "online",
                     config=_plain(cfg), reinit=True)
    run.log({"compare/summary": wandb.Table(columns=header, data=body)})
    run.finish()


def run_compare(cfg: DictConfig) -> list[dict[str, Any]]:
    """Train/evaluate every (model, seed) and write the report; returns the result rows.

    A run that raises is recorded as ``failed`` (``diverged`` for non-finite losses), with the
    error, and the comparison goes on with the next one; the traceback is printed. Errors in
    the user's data, config or output folder (other :class:`~genface.errors.GenfaceError`) stop it.
    """
    out = Path(cfg.out_dir) if cfg.out_dir else Path(HydraConfig.get().runtime.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    planned_steps(cfg)  # fail now, not after the first model, when there is no budget
    rows = []
    jobs = [(m, s) for m in cfg.models for s in cfg.seeds]
    for i, (model, seed) in enumerate(jobs, 1):
        rdir = run_dir(out, model, seed)
        done = rdir / "result.json"
        if cfg.resume and done.is_file():
            console.print(f"[bold][{i}/{len(jobs)}][/bold] {model} seed {seed}: reusing {done}")
            rows.append(json.loads(done.read_text()))
            continue
        console.print(f"[bold][{i}/{len(jobs)}][/bold] training {model} seed {seed} → {rdir}")
        try:
            rows.append(train_one(cfg, model, seed, rdir))
        except (KeyboardInterrupt, SystemExit):
            raise
        except GenfaceError as e:
            if not isinstance(e, NonFiniteLossError):  # the user's data, config or folder: stop and say so
                raise
            rows.append(failed_row(model, seed, e))
            console.print(f"  [red]{model} seed {seed} diverged[/red]: {rows[-1]['error']}")
        except Exception as e:  # one model failing must not lose the others; it is reported as failed
            traceback.print_exc()
            rows.append(failed_row(model, seed, e))
            console.print(f"  [red]{model} seed {seed} failed[/red]: {rows[-1]['error']}")
    path = report.write_report(_plain(cfg), rows, out, environment_line(cfg))
    # the swappers' side-by-side grid (FaceSwap, FaceSwap-GAN, CycleGAN), appended to report.md
    from genface.swap_grid import write_swap_grid

    write_swap_grid(cfg, rows, out)
    report.print_summary(rows, list(cfg.metrics), console=console)
    if cfg.logger_config == "wandb":
        _log_wandb(cfg, rows, out)
    console.print(f"report: {path}")
    return rows


@hydra.main(version_base="1.3", config_path="pkg://genface.configs", config_name="compare")
@_guard.report_errors
def hydra_main(cfg: DictConfig) -> None:
    run_compare(cfg)


def main() -> None:
    """``genface-compare``: checks the output folder before Hydra starts (genface/cli/_guard.py)."""
    _guard.run_hydra(hydra_main, "compare", "genface-compare")


if __name__ == "__main__":
    main()
