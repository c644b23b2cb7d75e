"""Reproduce StyleGAN's Table 1 (configs A-F) with one command, on the same data and budget.

Each config is ``configs/experiment/stylegan_ablation/<x>.yaml`` (A: ProGAN baseline; B:
+ bilinear resampling and the logistic loss with R1; C: + mapping network and styles; D: -
traditional input; E: + noise inputs; F: + mixing regularisation), composed with the
packaged Hydra configs and trained by :func:`genface.cli.train.train` with the same data,
seed, step budget, widths and growth schedule. Each trained model (EMA generator, at the
stage it reached) is evaluated with ``fsd_synth1k`` (Fréchet distance in genface's
SyntheticFaces feature space; *not* FID) and writes a sample grid. The script writes
``results.json`` and ``table.md`` (beside the paper's FIDs, ANCHORS.md) into ``--out``.

    python experiments/stylegan_ablation.py                        # CPU-sized: 32 px, 400 steps of 32
    python experiments/stylegan_ablation.py --configs a f --steps 100
    python experiments/stylegan_ablation.py --trainer gpu --resolution 64 --steps 20000 --batch-size 64 \\
        --fmap-base 4096 --fmap-max 256 --z-dim 256

Budget and schedule: ``--steps`` batches of ``--batch-size`` real images; by default the
growth schedule is scaled so that every phase up to the final resolution's stabilisation fits
in 60% of the budget (``--fade-images`` / ``--stable-images`` override it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hydra import compose, initialize_config_module  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402
from omegaconf import open_dict  # noqa: E402

from genface.config import register_configs  # noqa: E402
from genface.models.stylegan import ABLATION_CONFIGS  # noqa: E402
from genface.nn.progressive import num_stages  # noqa: E402

#: StyleGAN Table 1 (FID, 50k images), CelebA-HQ / FFHQ (ANCHORS.md).
PAPER_FID = {"a": (7.79, 8.04), "b": (6.11, 5.25), "c": (5.34, 4.85), "d": (5.07, 4.88), "e": (5.06, 4.42),
             "f": (5.17, 4.40)}
ROWS = {"a": "A baseline ProGAN", "b": "B + tuning (incl. bilinear up/down)", "c": "C + add mapping and styles",
        "d": "D + remove traditional input", "e": "E + add noise inputs", "f": "F + mixing regularization"}


def default_schedule(steps: int, batch_size: int, resolution: int, start_stage: int = 0) -> tuple[int, int]:
    """Fade = stable images such that 4x4, every fade-in and every stabilisation (the last one
    included) fit in 60% of the budget; the last stage trains alone for the remaining 40%."""
    growing = num_stages(resolution) - 1 - start_stage
    images = int(0.6 * steps * batch_size)
    per = max(1, images // (2 * growing + 1)) if growing > 0 else images
    return per, per


def compose_run(name: str, args, out: Path):
    fade, stable = default_schedule(args.steps, args.batch_size, args.resolution)
    fade = args.fade_images if args.fade_images is not None else fade
    stable = args.stable_images if args.stable_images is not None else stable
    overrides = [
        f"experiment=stylegan_ablation/{name}",
        f"data={args.data}",
        f"data.resolution={args.resolution}",
        f"data.batch_size={args.batch_size}",
        f"trainer={args.trainer}",
        f"trainer.max_steps={args.steps}",
        f"trainer.val_check_interval={max(1, args.steps // 4)}",
        "trainer.limit_val_batches=1",
        f"trainer.log_every_n_steps={max(1, min(10, args.steps // 50))}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "~callbacks.rich_progress_bar",
        "callbacks.sample_grid.every_n_steps=0",
        "callbacks.sample_grid.n=16",
        f"callbacks.model_checkpoint.every_n_train_steps={args.steps}",
        f"seed={args.seed}",
        "logger=csv",
        f"task_name=stylegan_ablation_{name}",
        f"model.net.z_dim={args.z_dim}",
        f"model.net.w_dim={args.z_dim}",
        f"model.net.fmap_base={args.fmap_base}",
        f"model.net.fmap_max={args.fmap_max}",
        f"model.fade_images={fade}",
        f"model.stable_images={stable}",
    ]
    if args.data_path:
        overrides.append(f"data.path={args.data_path}")
    if args.num_images:
        overrides.append(f"data.dataset.num_images={args.num_images}")
    overrides += list(args.override)
    cfg = compose(config_name="train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    return cfg, overrides


def run_one(name: str, args, root: Path) -> dict:
    from genface.cli.train import train
    from genface.metrics import compute_metrics
    from genface.provenance import save_png

    out = root / name
    cfg, overrides = compose_run(name, args, out)
    start = time.perf_counter()
    result = train(cfg)
    module, dm = result["module"], result["datamodule"]
    module.eval()
    row = {"config": name.upper(), "row": ROWS[name], "overrides": overrides,
           "switches": ABLATION_CONFIGS[name.upper()], "loss": module.loss_name,
           "r1_gamma": module.objective.r1_gamma, "steps": int(result["trainer"].global_step),
           "images_seen": module.images_seen, "final_stage": module.stage, "final_alpha": module.alpha,
           "parameters": sum(p.numel() for p in module.net.parameters()),
           "train_time_s": result["wall_time_s"]}
    metrics: dict[str, float] = {}
    if args.metrics:
        key = f"{args.data}-{args.data_path or 'default'}-r{args.resolution}"
        if args.num_images:
            key += f"-n{args.num_images}"
        t0 = time.perf_counter()
        metrics = compute_metrics(args.metrics, reference=dm.dataset, device=module.device,
                                  reference_key=key, **module.metric_inputs())
        row["eval_time_s"] = time.perf_counter() - t0
    row["metrics"] = {k: float(v) for k, v in metrics.items()}
    with torch.no_grad():
        images = module.sample_images(args.grid, seed=0).float().cpu()
    from genface.utils import make_grid

    grid = make_grid((images + 1) / 2, nrow=int(math.sqrt(args.grid) + 0.5), padding=2, pad_value=1.0)
    row["grid"] = str(save_png(grid, root / f"samples_{name}.png", {"config": name.upper(), "steps": row["steps"]},
                                model=module))
    row["wall_time_s"] = time.perf_counter() - start
    (out / "result.json").write_text(json.dumps(row, indent=2, default=float))
    return row


def table(rows: list[dict], metric_names: list[str]) -> str:
    header = ["config", "Table 1 row", "paper FID CelebA-HQ", "paper FID FFHQ"] + metric_names + \
             ["loss", "final res (alpha)", "params", "train s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        name = r["config"].lower()
        res = 4 * 2 ** r["final_stage"]
        cells = [r["config"], r["row"][2:], f"{PAPER_FID[name][0]:.2f}", f"{PAPER_FID[name][1]:.2f}"]
        cells += [f"{r['metrics'].get(m, float('nan')):.3f}" for m in metric_names]
        cells += [r["loss"] + (f" + R1 {r['r1_gamma']:g}" if r["r1_gamma"] else " + GP + drift"),
                  f"{res} ({r['final_alpha']:.2f})", f"{r['parameters']:,}", f"{r['train_time_s']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description="StyleGAN Table 1 ablation (configs A-F) on one budget.")
    p.add_argument("--configs", nargs="+", default=list("abcdef"), choices=list("abcdef"), help="configs to run")
    p.add_argument("--steps", type=int, default=400, help="training steps (batches) per config")
    p.add_argument("--batch-size", type=int, default=32, help="real images per step")
    p.add_argument("--resolution", type=int, default=32, help="image size (the synth feature net is cached at 32)")
    p.add_argument("--trainer", default="cpu", help="trainer config: cpu, gpu, ddp")
    p.add_argument("--data", default="synthetic_faces", help="data config (configs/data/<name>.yaml)")
    p.add_argument("--data-path", default=None, help="root folder for data=folder / celeba")
    p.add_argument("--num-images", type=int, default=None, help="data.dataset.num_images (default: the config's)")
    p.add_argument("--fmap-base", type=int, default=256, help="model.net.fmap_base")
    p.add_argument("--fmap-max", type=int, default=32, help="model.net.fmap_max")
    p.add_argument("--z-dim", type=int, default=128, help="z_dim = w_dim (A/B need them equal)")
    p.add_argument("--fade-images", type=int, default=None, help="images per fade-in (default: scaled to --steps)")
    p.add_argument("--stable-images", type=int, default=None, help="images per stabilisation (default: scaled)")
    p.add_argument("--metrics", nargs="*", default=["fsd_synth1k"], help="genface.metrics names ([] = none)")
    p.add_argument("--grid", type=int, default=16, help="images in each sample grid")
    p.add_argument("--seed", type=int, default=0, help="seed of every run")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides for every config")
    p.add_argument("--out", type=Path, default=None, help="output folder (default logs/stylegan_ablation/<time>)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    root = args.out or REPO / "logs" / "stylegan_ablation" / dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    root.mkdir(parents=True, exist_ok=True)
    register_configs()
    GlobalHydra.instance().clear()
    rows = []
    t0 = time.perf_counter()
    with initialize_config_module(config_module="genface.configs", version_base="1.3"):
        for name in args.configs:
            print(f"== config {name.upper()}: {ROWS[name]}", flush=True)
            rows.append(run_one(name, args, root))
            print(json.dumps({k: rows[-1][k] for k in ("config", "metrics", "train_time_s", "final_stage")}),
                  flush=True)
    total = time.perf_counter() - t0
    cmd = "python experiments/stylegan_ablation.py " + " ".join(sys.argv[1:] if argv is None else argv)
    md = (f"# StyleGAN Table 1 ablation\n\nCommand: `{cmd}`  \nWall time: {total:.0f} s "
          f"({torch.get_num_threads()} torch threads)  \nBudget per config: {args.steps} steps x "
          f"{args.batch_size} images at {args.resolution} px\n\n" + table(rows, list(args.metrics)) +
          "\n\nPaper: FID on 50k images at 1024 px after ~25M images; here: " +
          ", ".join(args.metrics or ["no metric"]) + " (not FID), a short run: compare rows only with each other.\n")
    (root / "table.md").write_text(md)
    (root / "results.json").write_text(json.dumps({"rows": rows, "wall_time_s": total, "command": cmd}, indent=2,
                                                  default=float))
    print(md)
    print(f"written to {root}")
    return rows


if __name__ == "__main__":
    main()
