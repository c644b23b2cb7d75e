"""Throughput benchmark: training and generation images/s and peak memory per model and resolution.

Each (model, resolution) case builds the model's LightningModule from the packaged Hydra
configs (``configs/model/<name>.yaml``, one per model), trains it for
``--warmup`` + ``--steps`` steps with a Lightning ``Trainer`` on a small cached
``SyntheticFaces`` set, and times every training batch from ``on_train_batch_start`` to
``on_train_batch_end``: the module's real ``training_step`` (forward, backward and optimiser
steps of D and G for the GANs, and their ``G_ema`` update, which is the module's since the
EMA stopped being a callback), data loading excluded, no callbacks (no grids, checkpoints)
and no logger. Generation is timed on ``module.sample_images(batch_size)``
(the generator in eval mode, no gradients; for FaceSwap an A->B swap).

Peak memory: ``torch.cuda.max_memory_allocated`` on CUDA (training and generation
separately); on CPU the process's peak resident set (``resource.getrusage`` ``ru_maxrss``),
which is why each case runs in its own subprocess by default (``--in-process`` turns that
off; the RSS then only grows). ``rss_before_mib`` is the RSS after imports and before the
model is built, so ``peak_rss_mib - rss_before_mib`` approximates the case's own memory.

Examples::

    python experiments/benchmark.py --models dcgan vae --resolutions 64 --batch-size 64
    python experiments/benchmark.py --device cuda --amp bf16 --channels-last --compile
    python experiments/benchmark.py --models dcgan vae --override dcgan:model.net.ngf=32 vae:model.net.z_dim=64

Writes JSON (``--out``, default ``logs/benchmark/<time>.json``) and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Lightning precision for each ``--amp`` choice.
AMP = {"none": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed"}

#: Extra Hydra overrides a model needs (FaceSwap trains on A/B pairs).
MODEL_OVERRIDES = {"faceswap": ["data=synthetic_swap", "model.preview_every_n_steps=0",
                                "model.swap_eval_samples=0"]}


def available_models() -> list[str]:
    """Model names with a packaged config (``configs/model/*.yaml``)."""
    return sorted(p.stem for p in (ROOT / "configs" / "model").glob("*.yaml"))


def rss_mib() -> float:
    """Peak resident set size of this process in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024


def compose_case(model: str, resolution: int, batch_size: int, device: str, amp: str,
                 out_dir: Path, overrides: list[str]):
    """Compose the training config of one case with the Hydra compose API."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf, open_dict

    from genface.config import register_configs

    if model not in available_models():
        raise ValueError(f"unknown model {model!r}; valid: {available_models()}")
    base = [f"model={model}", "logger=none", "callbacks=none",
            f"data.resolution={resolution}", f"data.batch_size={batch_size}",
            f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}", "trainer.devices=1",
            f"trainer.precision={AMP[amp]}", "trainer.limit_val_batches=0",
            "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
            "export_pretrained=false"]
    base += MODEL_OVERRIDES.get(model, [])
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="genface.configs", version_base="1.3"):
        cfg = compose(config_name="train", overrides=base)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
        cfg.trainer.default_root_dir = str(out_dir)
        # a small training set (rendered once and cached): enough batches, no validation
        cfg.data.dataset.num_images = max(4 * batch_size, 64)
        cfg.data.val_size = 0
        mine = [o.split(":", 1)[1] if ":" in o.split("=", 1)[0] else o for o in overrides
                if ":" not in o.split("=", 1)[0] or o.split(":", 1)[0] == model]
        for o in mine:
            key = o.split("=", 1)[0]
            if OmegaConf.select(cfg, key, default="<missing>") == "<missing>":
                raise KeyError(f"--override {o!r}: {model}'s config has no key {key!r}")
        cfg.merge_with(OmegaConf.from_dotlist(mine))
    return cfg


def _compile_net(net) -> list[str]:
    """``nn.Module.compile()`` (in place, state-dict keys unchanged) on the parts a training step calls."""
    import torch

    done = []
    for name in ("generator", "discriminator", "encoder", "decoder", "decoders"):
        part = getattr(net, name, None)
        if isinstance(part, torch.nn.ModuleList | torch.nn.ModuleDict):
            for sub in (part.values() if isinstance(part, torch.nn.ModuleDict) else part):
                sub.compile()
            done.append(name)
        elif isinstance(part, torch.nn.Module):
            part.compile()
            done.append(name)
    if not done:
        net.compile()
        done.append("net")
    return done


def run_case(model: str, resolution: int, args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark one (model, resolution); returns a result row (``error`` set when it failed)."""
    row: dict[str, Any] = {"model": model, "resolution": resolution, "batch_size": args.batch_size,
                           "device": args.device, "amp": args.amp, "compile": args.compile,
                           "channels_last": args.channels_last, "steps": args.steps,
                           "warmup": args.warmup, "error": None}
    try:
        row.update(_run_case(model, resolution, args))
    except Exception as e:  # a case that cannot run (e.g. fp16 on CPU) is reported, not fatal
        row["error"] = f"{type(e).__name__}: {e}"
        if args.verbose:
            traceback.print_exc()
    return row


def _run_case(model: str, resolution: int, args: argparse.Namespace) -> dict[str, Any]:
    import lightning as L
    import torch
    from hydra.utils import instantiate

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise RuntimeError("--device cuda but torch.cuda.is_available() is False")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    rss_before = rss_mib()
    with tempfile.TemporaryDirectory(prefix="genface-bench-") as tmp:
        cfg = compose_case(model, resolution, args.batch_size, args.device, args.amp, Path(tmp),
                           args.override)
        L.seed_everything(args.seed, workers=True, verbose=False)
        datamodule = instantiate(cfg.data)
        module = instantiate(cfg.model, _convert_="all")
        if cfg.get("divergence") is not None and hasattr(module, "configure_divergence"):
            module.configure_divergence(**cfg.divergence)  # as genface-train (e.g. divergence.check_every)
        net = module.net
        params = sum(p.numel() for p in net.parameters())
        params_g = sum(p.numel() for p in net.generator.parameters()) if hasattr(net, "generator") else None
        fmt = torch.channels_last if args.channels_last else torch.contiguous_format
        if args.channels_last:
            module.to(memory_format=torch.channels_last)

        def to_format(batch, dataloader_idx=0):
            if isinstance(batch, dict):
                return {k: v.contiguous(memory_format=fmt) if torch.is_tensor(v) and v.ndim == 4 else v
                        for k, v in batch.items()}
            return batch

        module.on_after_batch_transfer = to_format  # inputs in the same memory format as the weights
        compiled = _compile_net(net) if args.compile else []

        times: list[float] = []

        class Timer(L.Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                sync()
                self.t0 = time.perf_counter()

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                sync()
                times.append(time.perf_counter() - self.t0)

        cfg.trainer.max_steps = args.warmup + args.steps
        trainer = instantiate(cfg.trainer, callbacks=[Timer()], logger=False)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        t_fit = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        fit_wall = time.perf_counter() - t_fit
        if len(times) < args.warmup + args.steps:
            raise RuntimeError(f"only {len(times)} training steps ran (expected {args.warmup + args.steps})")
        peak_train = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
        timed = times[args.warmup:]

        # -- generation --------------------------------------------------------------------
        module.to(device)
        module.eval()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        autocast = (torch.autocast(device.type, dtype=torch.bfloat16 if args.amp == "bf16" else torch.float16)
                    if args.amp != "none" else torch.autocast(device.type, enabled=False))
        gen_times: list[float] = []
        with torch.no_grad(), autocast:
            for i in range(args.warmup + args.steps):
                sync()
                t0 = time.perf_counter()
                images = module.sample_images(args.batch_size, seed=i)
                sync()
                gen_times.append(time.perf_counter() - t0)
        if tuple(images.shape[-2:]) != (resolution, resolution):
            raise RuntimeError(f"sample_images gave {tuple(images.shape)}, expected {resolution} px")
        peak_gen = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
        gen_timed = gen_times[args.warmup:]

    step = statistics.median(timed)
    gen = statistics.median(gen_timed)
    return {
        "module": cfg.model._target_, "net": cfg.model.net._target_, "params": params,
        "params_generator": params_g, "compiled": compiled, "threads": torch.get_num_threads(),
        "train_step_s_median": step, "train_step_s_mean": statistics.fmean(timed),
        "train_step_s_min": min(timed),
        "train_step_s_std": statistics.stdev(timed) if len(timed) > 1 else 0.0,
        "train_images_per_s": args.batch_size / step,
        "warmup_s": sum(times[: args.warmup]), "fit_wall_s": fit_wall,
        "generate_batch_s_median": gen, "generate_images_per_s": args.batch_size / gen,
        "peak_mem_train_mib": peak_train, "peak_mem_generate_mib": peak_gen,
        "peak_rss_mib": rss_mib(), "rss_before_mib": rss_before,
    }


def _run_isolated(model: str, resolution: int, args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """Run one case in a fresh interpreter, so that ``ru_maxrss`` is that case's peak."""
    with tempfile.TemporaryDirectory(prefix="genface-bench-case-") as tmp:
        out = Path(tmp) / "row.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--in-process",
               "--models", model, "--resolutions", str(resolution), "--out", str(out), "--quiet"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if out.is_file():
            return json.loads(out.read_text())["results"][0]
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"model": model, "resolution": resolution, "batch_size": args.batch_size,
                "device": args.device, "error": f"subprocess failed (rc={proc.returncode}): " + " | ".join(tail)}


def environment(args: argparse.Namespace) -> dict[str, Any]:
    import lightning
    import torch

    env = {"time": dt.datetime.now().isoformat(timespec="seconds"), "python": platform.python_version(),
           "torch": torch.__version__, "lightning": lightning.__version__, "platform": platform.platform(),
           "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "cpu": platform.processor(),
           "args": {k: v for k, v in vars(args).items() if k not in ("quiet",)}}
    if args.device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name()
        env["cuda"] = torch.version.cuda
    return env


def print_table(results: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    device = meta.get("gpu") or f"CPU ({meta['threads']} threads)"
    table = Table(title=f"genface benchmark: {device}, torch {meta['torch']}")
    for col in ("model", "px", "batch", "params", "train s/step", "train img/s", "gen img/s",
                "peak mem MiB", "note"):
        table.add_column(col, justify="left" if col in ("model", "note") else "right")
    for r in results:
        if r.get("error"):
            table.add_row(r["model"], str(r["resolution"]), str(r["batch_size"]), "", "", "", "", "",
                          r["error"][:80])
            continue
        mem = r["peak_mem_train_mib"] if r.get("peak_mem_train_mib") is not None else r["peak_rss_mib"]
        flags = [f"amp={r['amp']}"] if r["amp"] != "none" else []
        flags += ["compile"] * bool(r["compile"]) + ["channels_last"] * bool(r["channels_last"])
        table.add_row(r["model"], str(r["resolution"]), str(r["batch_size"]), f"{r['params'] / 1e6:.2f}M",
                      f"{r['train_step_s_median']:.4f}", f"{r['train_images_per_s']:.1f}",
                      f"{r['generate_images_per_s']:.1f}", f"{mem:.0f}" + ("" if r.get("peak_mem_train_mib") is not None else " (rss)"),
                      " ".join(flags))
    Console(width=max(120, Console().width)).print(table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=None,
                   help="model names (configs/model/<name>.yaml or progan/stylegan/stylegan2); default: all that build")
    p.add_argument("--resolutions", nargs="+", type=int, default=[32, 64], help="image sides in pixels")
    p.add_argument("--batch-size", type=int, default=64, help="images per training step and per generated batch")
    p.add_argument("--steps", type=int, default=10, help="timed steps (after the warm-up)")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps (compilation, allocator, caches)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--amp", choices=sorted(AMP), default="none", help="mixed precision: bf16, fp16 or none")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks (nn.Module.compile)")
    p.add_argument("--channels-last", action="store_true", help="channels_last weights and inputs")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads; default: torch's choice")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--override", nargs="*", default=[],
                   help="config keys as a dotlist applied after composition, e.g. model.net.ngf=32; "
                        "prefix one with '<model>:' to apply it to that model only (dcgan:model.net.ngf=32)")
    p.add_argument("--out", type=Path, default=None, help="JSON file; default logs/benchmark/<time>.json")
    p.add_argument("--in-process", action="store_true",
                   help="run every case in this process (faster; on CPU the peak RSS then only grows)")
    p.add_argument("--quiet", action="store_true", help="no table")
    p.add_argument("--verbose", action="store_true", help="print tracebacks of failed cases")
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1:
        p.error("--steps >= 1, --warmup >= 0 and --batch-size >= 1 are required")
    return args


def main(argv: list[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(raw)
    import warnings

    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*Using ModelCheckpoint with manual optimization.*")
    warnings.filterwarnings("ignore", message=".*overridden `on_after_batch_transfer`.*")
    import logging

    import lightning  # noqa: F401  (configures its loggers on import; quiet them afterwards)
    import torch

    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.ERROR)

    if args.threads:
        torch.set_num_threads(args.threads)
    models = args.models or available_models()
    results = []
    for model in models:
        for res in args.resolutions:
            if args.in_process:
                row = run_case(model, res, args)
            else:
                child = [a for a in _strip(raw, ("--models", "--resolutions", "--out"))]
                row = _run_isolated(model, res, args, child)
            results.append(row)
            if not args.quiet:
                status = row["error"] or f"{row['train_step_s_median']:.4f} s/step"
                print(f"[benchmark] {model} {res}px: {status}", file=sys.stderr, flush=True)
    meta = environment(args)
    out = args.out or ROOT / "logs" / "benchmark" / f"{dt.datetime.now():%Y-%m-%d_%H-%M-%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta["args"]["out"] = str(out)
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str))
    if not args.quiet:
        print_table(results, meta)
        print(f"wrote {out}")
    return 1 if any(r.get("error") for r in results) else 0


def _strip(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """``argv`` without the given options and their values (for the per-case subprocess)."""
    out, skip = [], False
    for a in argv:
        if a in options:
            skip = True
            continue
        if skip and not a.startswith("--"):
            continue
        skip = False
        if any(a.startswith(o + "=") for o in options):
            continue
        out.append(a)
    return out


if __name__ == "__main__":
    sys.exit(main())
