"""``genface-compare``: every model on the same data, budget, seeds and metrics, side by side.

    genface-compare                                         # CPU demo, embedded synthetic faces
    genface-compare models=[dcgan,vae] budget_images=128000 seeds=[0,1]
    genface-compare data_config=folder data_path=../shared/data/utkface_adults resolution=64
    genface-compare trainer_config=gpu resolution=64 budget_images=2000000

For each model it composes ``configs/train.yaml`` with the model's preset
(``configs/experiment/compare/<model>.yaml``), trains it (or reuses a finished run when
``resume=true``), evaluates the metrics that apply (:mod:`genface.metrics`) and writes
``report.md``, ``results.json``, one sample grid per model, a side-by-side grid and the
loss curves into the output folder.
"""

from __future__ import annotations

import csv
import inspect
import json
import math
import time
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
from rich.table import Table

from genface.cli.train import train
from genface.config import register_configs
from genface.provenance import save_png

console = Console(width=160)


@dataclass
class CompareSchema:
    """Typed keys of ``configs/compare.yaml`` (documented there)."""

    task_name: str = "compare"
    models: list[str] = field(default_factory=lambda: ["dcgan", "vae", "progan", "stylegan", "stylegan2", "faceswap"])
    data_config: str = "synthetic_faces"
    data_path: str | None = None
    resolution: int = 32
    batch_size: int = 64
    budget_images: int = 12800
    seeds: list[int] = field(default_factory=lambda: [0])
    trainer_config: str = "cpu"
    metrics: list[str] = field(default_factory=list)
    grid_samples: int = 64
    resume: bool = True
    out_dir: str | None = None
    logger_config: str = "csv"
    overrides: list[str] = field(default_factory=list)
    paths: Any = None


def _register() -> None:
    register_configs()
    ConfigStore.instance().store(name="genface_compare_schema", node=CompareSchema)


_register()


def count_parameters(net: torch.nn.Module) -> dict[str, int]:
    """Parameters in total and per top-level part (generator, discriminator, encoder, ...)."""
    counts = {"total": sum(p.numel() for p in net.parameters())}
    for name in ("generator", "discriminator", "encoder", "decoder", "decoders"):
        part = getattr(net, name, None)
        if isinstance(part, torch.nn.Module):
            counts[name] = sum(p.numel() for p in part.parameters())
    return counts


#: logged train/* values that are not losses (kept out of the loss columns and curves)
NOT_LOSSES = ("kl_weight", "skipped_steps", "d_real", "d_fake", "alpha", "stage", "pl_mean")


def _is_loss(key: str) -> bool:
    name = key.removeprefix("train/")
    return key.startswith("train/") and name not in NOT_LOSSES and "lr" not in name.split("_")


def final_losses(metrics_csv: Path, tail: float = 0.1) -> dict[str, float]:
    """Mean of each ``train/*`` loss term over the last ``tail`` fraction of its logged values."""
    if not metrics_csv.is_file():
        return {}
    with open(metrics_csv) as f:
        rows = list(csv.DictReader(f))
    out: dict[str, float] = {}
    keys = [k for k in (rows[0].keys() if rows else []) if _is_loss(k)]
    for k in keys:
        vals = [float(r[k]) for r in rows if r.get(k) not in (None, "")]
        if vals:
            n = max(1, int(len(vals) * tail))
            out[k.removeprefix("train/")] = sum(vals[-n:]) / n
    return out


def loss_history(metrics_csv: Path) -> dict[str, tuple[list[int], list[float]]]:
    """``train/*`` loss columns of a CSVLogger file as (steps, values)."""
    if not metrics_csv.is_file():
        return {}
    with open(metrics_csv) as f:
        rows = list(csv.DictReader(f))
    hist: dict[str, tuple[list[int], list[float]]] = {}
    for r in rows:
        for k, v in r.items():
            if _is_loss(k) and v not in (None, ""):
                steps, vals = hist.setdefault(k.removeprefix("train/"), ([], []))
                steps.append(int(float(r.get("step") or len(steps))))
                vals.append(float(v))
    return hist


def applicable_metrics(names: list[str], inputs: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Split metric names into those this model can supply and the others, with reasons."""
    from genface.metrics import get_metric

    have = {"reference"}
    if "generator_fn" in inputs:
        have.add("generator")
    if "recon_fn" in inputs:
        have.add("autoencoder")
    if "model" in inputs:
        have.add("stylegan_mapping")
    if "swap_fn" in inputs:
        have.add("swapper")
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


def train_one(cfg: DictConfig, model: str, seed: int, run_dir: Path) -> dict[str, Any]:
    """Train and evaluate one model with one seed; returns its result row."""
    from genface.metrics import compute_metrics

    steps = max(1, cfg.budget_images // cfg.batch_size)
    overrides = [
        f"experiment=compare/{model}",
        f"data={cfg.data_config}",
        f"data.resolution={cfg.resolution}",
        f"data.batch_size={cfg.batch_size}",
        f"trainer={cfg.trainer_config}",
        f"trainer.max_steps={steps}",
        f"trainer.val_check_interval={max(1, steps // 4)}",
        f"trainer.log_every_n_steps={max(1, min(10, steps // 50))}",
        f"seed={seed}",
        f"logger={cfg.logger_config}",
        f"task_name=compare_{model}",
        f"callbacks.model_checkpoint.every_n_train_steps={max(1, steps // 2)}",
        "callbacks.sample_grid.every_n_steps=0",
        "+callbacks.throughput._target_=genface.training.callbacks.Throughput",
    ]
    if cfg.data_path:
        overrides.append(f"data.path={cfg.data_path}")
    tcfg = compose(config_name="train", overrides=overrides + list(cfg.overrides))
    with open_dict(tcfg):
        tcfg.paths.output_dir = str(run_dir)
    start = time.perf_counter()
    result = train(tcfg)
    module, dm, trainer = result["module"], result["datamodule"], result["trainer"]
    thr = next(c for c in trainer.callbacks if type(c).__name__ == "Throughput")
    row: dict[str, Any] = {
        "model": model,
        "seed": seed,
        "net": type(module.net).__name__,
        "parameters": count_parameters(module.net),
        "steps": int(trainer.global_step),
        "batch_size": cfg.batch_size,
        "resolution": cfg.resolution,
        "images_per_s": thr.images_per_second,
        "train_time_s": result["wall_time_s"],
        "final_losses": final_losses(run_dir / "metrics.csv"),
    }
    module.eval()
    inputs = module.metric_inputs()
    names, skipped = applicable_metrics(list(cfg.metrics), inputs)
    reference = dm.dataset if "image" in (dm.dataset[0] if dm.dataset is not None else {}) else None
    metrics: dict[str, float] = {}
    if names and reference is not None:
        console.print(f"  evaluating {', '.join(names)}")
        key = f"{cfg.data_config}-{cfg.data_path or 'default'}-r{cfg.resolution}"
        # only the inputs this registry takes (a swapper's swap_fn before the swap metrics exist)
        accepted = inspect.signature(compute_metrics).parameters
        metrics = compute_metrics(names, reference=reference, device=module.device, reference_key=key,
                                  **{k: v for k, v in inputs.items() if k in accepted})
    metrics.update(module.evaluate_extra(dm))
    row["metrics"] = {k: float(v) for k, v in metrics.items() if not k.endswith("/seconds")}
    row["metrics_skipped"] = skipped
    with torch.no_grad():
        images = module.sample_images(cfg.grid_samples, seed=0).float().cpu()
    grid_path = run_dir / "samples.png"
    save_png(_grid(images, cfg.grid_samples), grid_path, {"model": model, "seed": seed})
    row["grid"] = str(grid_path)
    row["wall_time_s"] = time.perf_counter() - start
    _write_json(run_dir / "result.json", row)
    return row


def _grid(images: torch.Tensor, n: int) -> torch.Tensor:
    import torchvision

    return torchvision.utils.make_grid((images + 1) / 2, nrow=int(math.sqrt(n) + 0.5), padding=2, pad_value=1.0)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        return f"{v:.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def headline_metrics(rows: list[dict[str, Any]]) -> list[str]:
    """Metric keys for the summary: each metric's headline value, or its parts when it has none
    (reconstruction: mae, psnr, ssim); counts and timings stay in the details table."""
    keys = {k for r in rows for k in r["metrics"]}
    heads = {k for k in keys if "/" not in k}
    parts = {k for k in keys if "/" in k and k.split("/")[0] not in heads and not k.split("/")[1].startswith("num_")}
    return sorted(heads | parts)


def summary_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The main table: one row per model and seed."""
    metric_names = headline_metrics(rows)
    header = ["model", "seed", "params", "images/s", "train s", "wall s", "final losses", *metric_names]
    body = []
    for r in rows:
        losses = ", ".join(f"{'total' if k == 'loss' else k} {_fmt(v)}" for k, v in sorted(r["final_losses"].items()))
        line = [r["model"], str(r["seed"]), _fmt(r["parameters"]["total"]), _fmt(r["images_per_s"]),
                _fmt(r["train_time_s"]), _fmt(r["wall_time_s"]), losses]
        line += [_fmt(r["metrics"].get(k, float("nan"))) for k in metric_names]
        body.append(line)
    return header, body


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(b) + " |" for b in body]
    return "\n".join(lines)


def write_report(cfg: DictConfig, rows: list[dict[str, Any]], out: Path) -> Path:
    """report.md, results.json, the side-by-side grid and the loss curves."""
    from genface.metrics import get_metric

    header, body = summary_rows(rows)
    metric_names = sorted({k.split("/")[0] for r in rows for k in r["metrics"]} & set(cfg.metrics))
    lines = [
        "# genface-compare report",
        "",
        "_All images are synthetic, generated by genface models._",
        "",
        f"- data: `{cfg.data_config}`{' at ' + cfg.data_path if cfg.data_path else ''}, {cfg.resolution} px",
        f"- budget: {cfg.budget_images:,} images per model (batch {cfg.batch_size}), seeds {list(cfg.seeds)}",
        f"- trainer: `{cfg.trainer_config}`; device: {'cuda' if torch.cuda.is_available() and cfg.trainer_config == 'gpu' else 'cpu'}"
        f", torch {torch.__version__}, {torch.get_num_threads()} threads",
        "",
        "## Summary",
        "",
        markdown_table(header, body),
        "",
        "`params`: all trainable parameters of the network (generator + discriminator for GANs); "
        "`images/s`: training images per second after warm-up; `train s`: fit time; "
        "`wall s`: fit + evaluation; losses: mean of the last 10% of logged values.",
        "",
    ]
    if metric_names:
        lines += ["## Metrics and their protocols", "", "| metric | protocol | paper | agrees with |", "|---|---|---|---|"]
        for name in metric_names:
            spec = get_metric(name)
            lines.append(f"| `{name}` | {spec.description} | {spec.paper} | {spec.reference_impl} |")
        lines.append("")
    skipped = {(r["model"], k): v for r in rows for k, v in r.get("metrics_skipped", {}).items()}
    if skipped:
        lines += ["Metrics not computed:", ""]
        lines += [f"- {m} / `{k}`: {v}" for (m, k), v in sorted(skipped.items())]
        lines.append("")
    extra = sorted({k for r in rows for k in r["metrics"]} - set(headline_metrics(rows)))
    if extra:
        lines += ["## Metric details", "", "| model | seed | " + " | ".join(extra) + " |", "|---|---|" + "---|" * len(extra)]
        for r in rows:
            lines.append(f"| {r['model']} | {r['seed']} | " + " | ".join(_fmt(r["metrics"].get(k, float("nan"))) for k in extra) + " |")
        lines.append("")
    side = _side_by_side(rows, out / "samples_side_by_side.png")
    curves = _loss_curves(rows, out / "loss_curves.png", out)
    lines += ["## Samples", "", f"![samples]({side.name})", ""]
    lines += [f"- {r['model']} (seed {r['seed']}): `{Path(r['grid']).relative_to(out)}`" for r in rows]
    lines += ["", "## Loss curves", "", f"![loss curves]({curves.name})", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    _write_json(out / "results.json", {"config": _plain(cfg), "results": rows})
    return report


def _plain(cfg: DictConfig) -> dict[str, Any]:
    """The comparison's own settings as plain data (paths depend on the Hydra run and are left out)."""
    return {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
            for k, v in cfg.items() if k != "paths"}


def _side_by_side(rows: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, axes = plt.subplots(1, len(rows), figsize=(4 * len(rows), 4.4), squeeze=False)
    for ax, r in zip(axes[0], rows):
        ax.imshow(Image.open(r["grid"]))
        ax.set_title(f"{r['model']} (seed {r['seed']})")
        ax.axis("off")
    fig.suptitle("genface-compare samples (synthetic)")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Description": "synthetic: generated by genface models"})
    plt.close(fig)
    return path


def _loss_curves(rows: list[dict[str, Any]], path: Path, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(4.5 * len(rows), 3.5), squeeze=False)
    for ax, r in zip(axes[0], rows):
        hist = loss_history(out / "runs" / f"{r['model']}_s{r['seed']}" / "metrics.csv")
        for name, (steps, vals) in sorted(hist.items()):
            k = max(1, len(vals) // 50)  # moving average over ~2% of the run
            smooth = [sum(vals[max(0, i - k + 1): i + 1]) / len(vals[max(0, i - k + 1): i + 1]) for i in range(len(vals))]
            ax.plot(steps, smooth, label=name)
        ax.set_title(r["model"])
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Description": "generated by genface-compare"})
    plt.close(fig)
    return path


def print_table(rows: list[dict[str, Any]]) -> None:
    header, body = summary_rows(rows)
    table = Table(title="genface-compare")
    for h in header:
        table.add_column(h, justify="left" if h in ("model", "final losses") else "right")
    for b in body:
        table.add_row(*b)
    console.print(table)


def _log_wandb(cfg: DictConfig, rows: list[dict[str, Any]], out: Path) -> None:
    import wandb

    from genface.config import wandb_offline

    header, body = summary_rows(rows)
    run = wandb.init(project="genface", name="compare", dir=str(out), mode="offline" if wandb_offline() else "online",
                     config=_plain(cfg), reinit=True)
    run.log({"compare/summary": wandb.Table(columns=header, data=body)})
    run.finish()


def run_compare(cfg: DictConfig) -> list[dict[str, Any]]:
    """Train/evaluate every (model, seed) and write the report; returns the result rows."""
    out = Path(cfg.out_dir) if cfg.out_dir else Path(HydraConfig.get().runtime.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    jobs = [(m, s) for m in cfg.models for s in cfg.seeds]
    for i, (model, seed) in enumerate(jobs, 1):
        run_dir = out / "runs" / f"{model}_s{seed}"
        done = run_dir / "result.json"
        if cfg.resume and done.is_file():
            console.print(f"[bold][{i}/{len(jobs)}][/bold] {model} seed {seed}: reusing {done}")
            rows.append(json.loads(done.read_text()))
            continue
        console.print(f"[bold][{i}/{len(jobs)}][/bold] training {model} seed {seed} → {run_dir}")
        rows.append(train_one(cfg, model, seed, run_dir))
    report = write_report(cfg, rows, out)
    # the swappers' side-by-side grid (FaceSwap, FaceSwap-GAN, CycleGAN); nothing without swappers
    from genface.swap_grid import write_swap_grid

    write_swap_grid(cfg, rows, out)
    print_table(rows)
    if cfg.logger_config == "wandb":
        _log_wandb(cfg, rows, out)
    console.print(f"report: {report}")
    return rows


@hydra.main(version_base="1.3", config_path="pkg://genface.configs", config_name="compare")
def main(cfg: DictConfig) -> None:
    run_compare(cfg)


if __name__ == "__main__":
    main()
