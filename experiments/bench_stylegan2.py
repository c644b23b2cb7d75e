"""StyleGAN2 training throughput (images/s) at several resolutions, precisions and layouts.

Trains :class:`genface.training.stylegan.StyleGAN2Module` (the real training step: D step with
lazy R1 every 16, G step with path length every 4, Adam) with a Lightning ``Trainer`` on
random images held in memory (data loading is not what is measured), and times every
training batch from ``on_train_batch_start`` to ``on_train_batch_end`` with device
synchronisation; the first ``--warmup`` batches are excluded (for ``--compile`` they include
compilation). No EMA, grids, checkpoints or logger.

``--compile`` compiles the generator and the discriminator with ``torch.compile``; the lazy
regularisation steps (R1, path length) need double backward, which compiled graphs do not
support, so those steps run the same modules eagerly (they share the weights).

Examples::

    python experiments/bench_stylegan2.py --device cuda --resolutions 64 128 256 --grid
    python experiments/bench_stylegan2.py --device cuda --resolutions 128 --precision bf16 --channels-last --compile
    python experiments/bench_stylegan2.py --resolutions 16 --batch-size 4 --steps 2 --warmup 1 \\
        --channel-base 256 --channel-max 16      # a CPU smoke test

Prints a table and writes JSON (``--out``). Reference (ANCHORS.md): stylegan2-ada-pytorch on
one V100 ~13 s/kimg at 128 px and ~23 s/kimg at 256 px (config ``paper256``-like widths, batch 64
over 8 GPUs there; not the same setting).
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from genface.models.stylegan2 import StyleGAN2
from genface.training.stylegan import StyleGAN2Module

PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed"}


class RandomImages(Dataset):
    """``n`` fixed random images in [-1, 1] as genface samples (``{"image", "identity"}``)."""

    def __init__(self, n: int, resolution: int):
        g = torch.Generator().manual_seed(0)
        self.images = (torch.rand(n, 3, resolution, resolution, generator=g) * 2 - 1)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return {"image": self.images[i], "identity": torch.tensor(0)}


class BenchModule(StyleGAN2Module):
    """StyleGAN2Module with optional compiled G/D (eager on the lazy-regularisation steps) and
    channels-last inputs."""

    compiled_g = None
    compiled_d = None
    channels_last = False

    def generator_forward(self, z, training=False):
        g = self.compiled_g if self.compiled_g is not None else self.net.generator
        return g(z, mixing_prob=self._mixing_prob(training), update_w_avg=training)

    def discriminator_forward(self, x):
        obj = self.objective
        r1_step = obj.r1_gamma > 0 and self.iteration % obj.r1_every == 0
        d = self.compiled_d if (self.compiled_d is not None and not r1_step) else self.net.discriminator
        return d(x).flatten()

    def on_after_batch_transfer(self, batch, dataloader_idx):
        if self.channels_last:
            batch = dict(batch, image=batch["image"].contiguous(memory_format=torch.channels_last))
        return batch


class BatchTimer(L.Callback):
    """Per-batch wall time with device synchronisation."""

    def __init__(self, warmup: int):
        self.warmup, self.times, self._t0 = warmup, [], 0.0

    def _sync(self, pl_module):
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._sync(pl_module)
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._sync(pl_module)
        self.times.append(time.perf_counter() - self._t0)

    @property
    def measured(self) -> list[float]:
        return self.times[self.warmup:]


def run_case(args, resolution: int, precision: str, channels_last: bool, compile_: bool) -> dict:
    L.seed_everything(0, workers=False)
    net = StyleGAN2(resolution=resolution, z_dim=args.z_dim, w_dim=args.z_dim, channel_base=args.channel_base,
                    channel_max=args.channel_max)
    module = BenchModule(net)
    device = torch.device(args.device)
    if channels_last:
        module.net.to(memory_format=torch.channels_last)
        module.channels_last = True
    if compile_:
        module.compiled_g = torch.compile(module.net.generator)
        module.compiled_d = torch.compile(module.net.discriminator)
    steps = args.warmup + args.steps
    data = DataLoader(RandomImages(args.batch_size * min(steps, 8), resolution), batch_size=args.batch_size,
                      shuffle=False, drop_last=True, num_workers=0, pin_memory=device.type == "cuda")
    timer = BatchTimer(args.warmup)
    trainer = L.Trainer(accelerator="gpu" if device.type == "cuda" else "cpu", devices=1,
                        precision=PRECISIONS[precision], max_steps=steps, max_epochs=-1, logger=False,
                        callbacks=[timer], enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    row = {"resolution": resolution, "precision": precision, "channels_last": channels_last, "compile": compile_,
           "batch_size": args.batch_size, "steps": args.steps,
           "parameters": sum(p.numel() for p in net.parameters())}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        trainer.fit(module, train_dataloaders=data)
    except Exception as e:  # report the failure in the table instead of stopping the sweep
        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        return row
    t = timer.measured
    seconds = sum(t)
    row["images_per_s"] = args.batch_size * len(t) / seconds if seconds > 0 else float("nan")
    row["s_per_kimg"] = 1000 / row["images_per_s"]
    row["ms_per_step"] = 1000 * seconds / max(1, len(t))
    if device.type == "cuda":
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256], help="image sizes")
    p.add_argument("--precision", nargs="+", default=["fp32"], choices=sorted(PRECISIONS),
                   help="one or more of fp32, bf16 (bf16-mixed autocast), fp16")
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format for nets and inputs")
    p.add_argument("--compile", action="store_true", help="torch.compile G and D (eager on R1/PL steps)")
    p.add_argument("--grid", action="store_true",
                   help="every combination of --precision x channels_last {off,on} x compile {off,on}")
    p.add_argument("--batch-size", type=int, default=32, help="images per step")
    p.add_argument("--steps", type=int, default=20, help="timed steps (a multiple of 16 covers a full lazy-R1 cycle)")
    p.add_argument("--warmup", type=int, default=5, help="untimed first steps (compilation, autotuning)")
    p.add_argument("--channel-base", type=int, default=16384, help="StyleGAN2 channel_base (config F: 32768)")
    p.add_argument("--channel-max", type=int, default=512, help="StyleGAN2 channel_max")
    p.add_argument("--z-dim", type=int, default=512, help="z_dim = w_dim")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cuda or cpu")
    p.add_argument("--out", type=Path, default=None, help="JSON output path (default: print only)")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # true fp32
        torch.backends.cudnn.benchmark = True
    combos = (list(itertools.product(args.precision, [False, True], [False, True])) if args.grid
              else [(pr, args.channels_last, args.compile) for pr in args.precision])
    rows = []
    for res in args.resolutions:
        for precision, cl, comp in combos:
            row = run_case(args, res, precision, cl, comp)
            rows.append(row)
            print(json.dumps(row), flush=True)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    print(f"\nStyleGAN2 training throughput on {device_name} (batch {args.batch_size}, channel_base "
          f"{args.channel_base}, channel_max {args.channel_max}, {args.steps} timed steps)\n")
    print("| res | precision | channels_last | compile | images/s | s/kimg | ms/step | peak GiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['resolution']} | {r['precision']} | {r['channels_last']} | {r['compile']} | "
                  f"error: {r['error']} | | | |")
            continue
        mem = f"{r['peak_mem_gib']:.2f}" if "peak_mem_gib" in r else "-"
        print(f"| {r['resolution']} | {r['precision']} | {r['channels_last']} | {r['compile']} | "
              f"{r['images_per_s']:.1f} | {r['s_per_kimg']:.1f} | {r['ms_per_step']:.1f} | {mem} |")
    meta = {"device": device_name, "torch": torch.__version__, "args": {k: str(v) for k, v in vars(args).items()}}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
