"""Side-by-side training speed: genface against reference implementations, in ONE process.

Contestants take turns step by step (genface, reference 1, reference 2, genface, ...), so
that whatever else loads the machine hits all of them alike; the figure reported for each
is the median time of its steps of each kind, and the ratio ``genface / reference`` (below
1 = genface faster).

StyleGAN2 (``--model stylegan2``), every contestant with the same config: resolution,
widths (``--channel-base``/``--channel-max`` for genface and NVlabs, the matching
``channel_multiplier`` for rosinality), batch, non-saturating logistic loss, R1 gamma 10
every 16 steps, path length weight 2 every 4 steps on half the batch, style mixing 0.9,
EMA of G after every step:

* ``genface``: :class:`genface.training.stylegan.StyleGAN2Module` (its real
  ``training_step``, whose last act is the update of the module's ``G_ema``) under a Lightning
  ``Trainer``; the time of a step runs from ``on_train_batch_start`` to ``on_train_batch_end``,
  so it includes the EMA update.
* ``rosinality`` (``GENFACE_REF_ROSINALITY``: a checkout of rosinality/stylegan2-pytorch
  with ``model.py``, ``op/`` and ``train.py``): its ``Generator``/``Discriminator`` and the
  loss functions of its ``train.py`` (``d_logistic_loss``, ``d_r1_loss``,
  ``g_nonsaturating_loss``, ``g_path_regularize``, ``mixing_noise``, ``accumulate``), in
  the order of its training loop (D step, separate R1 pass, G step, separate path-length
  pass, EMA). Its ``op`` package compiles CUDA kernels at import; without a CUDA device the
  compilation is skipped and its own CPU fallbacks (``upfirdn2d_native``, plain leaky ReLU)
  run, which is what rosinality runs on a CPU.
* ``nvlabs`` (``GENFACE_REF_NVLABS``: a checkout of NVlabs/stylegan2-ada-pytorch): its
  ``Generator``/``Discriminator`` and ``StyleGAN2Loss`` driven phase by phase as its
  ``training_loop.py`` does (Gmain, Greg every 4, Dmain, Dreg every 16; ``requires_grad``
  toggled per phase; EMA). On CUDA its custom ops (``upfirdn2d``, ``bias_act``) compile when a
  toolchain is there; the JSON says whether they did. ``--nvlabs-fp16-res N`` turns on its
  mixed precision (fp16 in the top N resolutions, ``conv_clamp=256``).

Step kinds: ``plain``, ``pl`` (path length) and ``r1pl`` (R1 and path length; every 16th
step, which is also a 4th). The schedule is one untimed warm-up step, then ``--cycles``
times the three kinds; the amortised step time is ``(r1pl + 3 pl + 12 plain) / 16`` of
the medians, as in a 16-step lazy-regularisation cycle.

DCGAN (``--model dcgan``, 64 px, batch 64): ``examples`` is pytorch/examples ``dcgan/main.py``
(``GENFACE_REF_EXAMPLES``: the checkout holding ``dcgan/main.py``; its ``Generator``,
``Discriminator`` and ``weights_init`` are read from the file, the script itself is not
run) in its own loop (D on real, D on ``fake.detach()``, G on the same fake; BCE after a
sigmoid; its ``.item()`` calls). ``genface_nets`` puts genface's DCGAN networks into that
same loop (BCE on logits, same maths), ``genface`` is :class:`~genface.training.gan.GANModule`
(its own loop: fresh latents for the G step, D frozen during the G step). All steps are
``plain``.

Also recorded: the load average at every step (the machine is shared), the peak memory
(CUDA: ``max_memory_allocated`` per contestant; CPU: the process's peak RSS, shared by all),
the compile time with ``--compile`` (first step minus the median), and the GPU utilisation
sampled by ``nvidia-smi`` during each contestant's steps where it exists.

Examples::

    GENFACE_REF_ROSINALITY=/tmp/ref/rosinality_full GENFACE_REF_NVLABS=/tmp/ref/nvlabs \\
        python experiments/bench_reference.py --model stylegan2 --resolution 32 --batch-size 4
    GENFACE_REF_EXAMPLES=/tmp/ref/examples python experiments/bench_reference.py --model dcgan
    python experiments/bench_reference.py --model stylegan2 --device cuda --resolution 128 \\
        --batch-size 32 --cycles 4 --out gpu.json

Prints one line per step, a table, and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_stylegan2 import PRECISIONS, BenchModule, RandomImages  # noqa: E402  (one home for these)

from genface.training.gan import GANModule  # noqa: E402

KIND_WEIGHTS = {"plain": 12, "pl": 3, "r1pl": 1}  # steps of each kind in a 16-step lazy cycle
KIND_ITERATION = {"plain": 1, "pl": 4, "r1pl": 0}  # an iteration index with that kind (i % 16, i % 4)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _load_functions(path: Path, names: set[str], namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute only the top-level ``def``/``class`` statements ``names`` of a reference script
    (its imports and ``__main__`` code are not run) in ``namespace``."""
    tree = ast.parse(path.read_text())
    body = [node for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names]
    missing = names - {node.name for node in body}
    if missing:
        raise RuntimeError(f"{path} lacks {sorted(missing)}")
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return namespace


@contextlib.contextmanager
def _on_path(path: str):
    sys.path.insert(0, path)
    try:
        yield
    finally:
        sys.path.remove(path)


# -- contestants ---------------------------------------------------------------------------------

class Contestant:
    """One implementation: ``step(kind, real)`` trains one iteration on ``real``."""

    name = "?"
    notes: dict[str, Any]

    def step(self, kind: str, real: torch.Tensor) -> None:
        raise NotImplementedError

    def parameters(self) -> int:
        return 0


class RosinalityStyleGAN2(Contestant):
    name = "rosinality"

    def __init__(self, root: str, args, device: torch.device):
        self.notes = {"root": root}
        import torch.utils.cpp_extension as cpp

        real_load = cpp.load
        compile_ops = device.type == "cuda" and not args.no_ref_ops
        if not compile_ops:  # its op package compiles at import; on CPU its native fallbacks run
            cpp.load = lambda *a, **k: None
        try:
            with _on_path(root):
                for name in [m for m in sys.modules if m in ("model", "op") or m.startswith("op.")]:
                    del sys.modules[name]
                import model  # rosinality's
        finally:
            cpp.load = real_load
        self.notes["custom_ops"] = "compiled" if compile_ops else "not compiled (CPU fallbacks)"
        ns = _load_functions(Path(root) / "train.py",
                             {"requires_grad", "accumulate", "d_logistic_loss", "d_r1_loss",
                              "g_nonsaturating_loss", "g_path_regularize", "make_noise", "mixing_noise"},
                             {"torch": torch, "F": F, "math": math, "random": __import__("random"),
                              "autograd": torch.autograd, "conv2d_gradfix": sys.modules["op"].conv2d_gradfix})
        self.f = argparse.Namespace(**{k: v for k, v in ns.items() if callable(v)})
        cm = args.channel_base // 16384  # rosinality: 256 px has 64 * cm channels; config F: cm = 2
        self.G = model.Generator(args.resolution, args.z_dim, 8, channel_multiplier=cm).to(device)
        self.D = model.Discriminator(args.resolution, channel_multiplier=cm).to(device)
        self.G_ema = copy.deepcopy(self.G).eval()
        g_ratio, d_ratio = 4 / 5, 16 / 17
        self.g_opt = torch.optim.Adam(self.G.parameters(), lr=0.002 * g_ratio, betas=(0.0, 0.99**g_ratio))
        self.d_opt = torch.optim.Adam(self.D.parameters(), lr=0.002 * d_ratio, betas=(0.0, 0.99**d_ratio))
        self.mean_path_length = 0.0
        self.args, self.device = args, device
        self.accum = 0.5 ** (32 / (10 * 1000))

    def parameters(self) -> int:
        return sum(p.numel() for m in (self.G, self.D) for p in m.parameters())

    def step(self, kind: str, real: torch.Tensor) -> None:
        f, a, dev = self.f, self.args, self.device
        n, latent, mixing = real.shape[0], a.z_dim, 0.9
        f.requires_grad(self.G, False)
        f.requires_grad(self.D, True)
        fake, _ = self.G(f.mixing_noise(n, latent, mixing, dev))
        d_loss = f.d_logistic_loss(self.D(real), self.D(fake))
        self.D.zero_grad()
        d_loss.backward()
        self.d_opt.step()
        if kind == "r1pl":  # its separate R1 pass
            real = real.detach().requires_grad_(True)
            real_pred = self.D(real)
            r1 = f.d_r1_loss(real_pred, real)
            self.D.zero_grad()
            (10 / 2 * r1 * 16 + 0 * real_pred[0]).backward()
            self.d_opt.step()
        f.requires_grad(self.G, True)
        f.requires_grad(self.D, False)
        fake, _ = self.G(f.mixing_noise(n, latent, mixing, dev))
        g_loss = f.g_nonsaturating_loss(self.D(fake))
        self.G.zero_grad()
        g_loss.backward()
        self.g_opt.step()
        if kind in ("pl", "r1pl"):  # its separate path-length pass
            fake, latents = self.G(f.mixing_noise(max(1, n // 2), latent, mixing, dev), return_latents=True)
            path_loss, self.mean_path_length, _ = f.g_path_regularize(fake, latents, self.mean_path_length)
            self.G.zero_grad()
            (2 * 4 * path_loss + 0 * fake[0, 0, 0, 0]).backward()
            self.g_opt.step()
        f.accumulate(self.G_ema, self.G, self.accum)


class NVlabsStyleGAN2(Contestant):
    name = "nvlabs"

    def __init__(self, root: str, args, device: torch.device):
        self.notes = {"root": root, "num_fp16_res": args.nvlabs_fp16_res}
        with _on_path(root):
            from torch_utils.ops import bias_act, conv2d_gradfix, upfirdn2d
            from training import networks
            from training.loss import StyleGAN2Loss
        self._ops = (bias_act, upfirdn2d)
        conv2d_gradfix.enabled = True  # as training_loop.py (its own version check may still fall back)
        clamp = 256 if args.nvlabs_fp16_res else None
        common = dict(c_dim=0, img_resolution=args.resolution, img_channels=3)
        self.G = networks.Generator(z_dim=args.z_dim, w_dim=args.z_dim, mapping_kwargs=dict(num_layers=8),
                                    synthesis_kwargs=dict(channel_base=args.channel_base,
                                                          channel_max=args.channel_max,
                                                          num_fp16_res=args.nvlabs_fp16_res, conv_clamp=clamp),
                                    **common).train().requires_grad_(False).to(device)
        self.D = networks.Discriminator(channel_base=args.channel_base, channel_max=args.channel_max,
                                        num_fp16_res=args.nvlabs_fp16_res, conv_clamp=clamp,
                                        epilogue_kwargs=dict(mbstd_group_size=4),
                                        **common).train().requires_grad_(False).to(device)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.loss = StyleGAN2Loss(device, self.G.mapping, self.G.synthesis, self.D, style_mixing_prob=0.9,
                                  r1_gamma=10, pl_batch_shrink=2, pl_decay=0.01, pl_weight=2)
        g_ratio, d_ratio = 4 / 5, 16 / 17
        self.g_opt = torch.optim.Adam(self.G.parameters(), lr=0.002 * g_ratio, betas=(0.0, 0.99**g_ratio), eps=1e-8)
        self.d_opt = torch.optim.Adam(self.D.parameters(), lr=0.002 * d_ratio, betas=(0.0, 0.99**d_ratio), eps=1e-8)
        self.args, self.device = args, device
        self.c = torch.zeros(args.batch_size, 0, device=device)

    def parameters(self) -> int:
        return sum(p.numel() for m in (self.G, self.D) for p in m.parameters())

    def custom_ops(self) -> str:
        bias_act, upfirdn2d = self._ops
        if self.device.type != "cuda":
            return "not used (CPU: reference implementations)"
        ok = [getattr(m, "_plugin", None) is not None for m in (bias_act, upfirdn2d)]
        return "compiled" if all(ok) else ("partly compiled" if any(ok) else "not compiled (reference fallback)")

    def step(self, kind: str, real: torch.Tensor) -> None:
        n = real.shape[0]
        phases = [("Gmain", self.G, self.g_opt, 1), ("Dmain", self.D, self.d_opt, 1)]
        if kind in ("pl", "r1pl"):
            phases.insert(1, ("Greg", self.G, self.g_opt, 4))
        if kind == "r1pl":
            phases.append(("Dreg", self.D, self.d_opt, 16))
        for name, module, opt, interval in phases:
            z = torch.randn(n, self.args.z_dim, device=self.device)
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            self.loss.accumulate_gradients(phase=name, real_img=real, real_c=self.c[:n], gen_z=z,
                                           gen_c=self.c[:n], sync=True, gain=interval)
            module.requires_grad_(False)
            for p in module.parameters():
                if p.grad is not None:
                    torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
            opt.step()
        beta = 0.5 ** (n / 10_000)
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)


class ExamplesDCGAN(Contestant):
    """pytorch/examples ``dcgan/main.py`` loop around either its networks or genface's."""

    def __init__(self, root: str | None, args, device: torch.device, genface_nets: bool = False):
        self.name = "genface_nets" if genface_nets else "examples"
        self.notes = {"root": root, "loop": "pytorch/examples dcgan/main.py"}
        if genface_nets:
            from genface.models.dcgan import DCGAN

            net = DCGAN(resolution=args.resolution, z_dim=100, ngf=64, ndf=64)
            self.G, self.D = net.generator.to(device), net.discriminator.to(device)
            self.criterion = torch.nn.BCEWithLogitsLoss()
            self.z_shape = (100,)
        else:
            ns = _load_functions(Path(root) / "dcgan" / "main.py", {"Generator", "Discriminator", "weights_init"},
                                 {"torch": torch, "nn": torch.nn, "nz": 100, "ngf": 64, "ndf": 64, "nc": 3})
            self.G = ns["Generator"](1).to(device)
            self.D = ns["Discriminator"](1).to(device)
            self.G.apply(ns["weights_init"])
            self.D.apply(ns["weights_init"])
            self.criterion = torch.nn.BCELoss()
            self.z_shape = (100, 1, 1)
        if args.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.device = device

    def parameters(self) -> int:
        return sum(p.numel() for m in (self.G, self.D) for p in m.parameters())

    def step(self, kind: str, real: torch.Tensor) -> None:
        n = real.shape[0]
        self.D.zero_grad()
        label = torch.full((n,), 1.0, dtype=real.dtype, device=self.device)
        out = self.D(real)
        err_real = self.criterion(out, label)
        err_real.backward()
        out.mean().item()
        fake = self.G(torch.randn(n, *self.z_shape, device=self.device))
        label.fill_(0.0)
        out = self.D(fake.detach())
        err_fake = self.criterion(out, label)
        err_fake.backward()
        out.mean().item()
        err_d = err_real + err_fake
        self.opt_d.step()
        self.G.zero_grad()
        label.fill_(1.0)
        out = self.D(fake)
        err_g = self.criterion(out, label)
        err_g.backward()
        out.mean().item()
        self.opt_g.step()
        err_d.item(), err_g.item()


# -- the interleaved run ---------------------------------------------------------------------------

class GpuSampler:
    """``nvidia-smi`` utilisation samples (every 200 ms) with their times, where nvidia-smi exists."""

    def __init__(self):
        self.samples: list[tuple[float, float]] = []
        self.proc = None
        try:
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                          "-lms", "200"], stdout=subprocess.PIPE, text=True)
        except (FileNotFoundError, OSError):
            return
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.samples.append((time.perf_counter(), float(line.split(",")[0])))

    def mean_between(self, windows: list[tuple[float, float]]) -> float | None:
        vals = [u for t, u in self.samples if any(a <= t <= b for a, b in windows)]
        return statistics.mean(vals) if vals else None

    def close(self):
        if self.proc is not None:
            self.proc.terminate()


class Race:
    """Keeps the per-step records of every contestant."""

    def __init__(self, device: torch.device):
        self.device = device
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.windows: dict[str, list[tuple[float, float]]] = {}
        self.peak_mem: dict[str, float] = {}

    def add(self, name: str, kind: str, t0: float, t1: float, timed: bool) -> None:
        rec = {"kind": kind, "s": t1 - t0, "timed": timed, "load1": os.getloadavg()[0]}
        self.records.setdefault(name, []).append(rec)
        if timed:
            self.windows.setdefault(name, []).append((t0, t1))
        if self.device.type == "cuda":
            self.peak_mem[name] = max(self.peak_mem.get(name, 0.0), torch.cuda.max_memory_allocated(self.device) / 2**30)
            torch.cuda.reset_peak_memory_stats(self.device)
        print(f"  {name:>12} {kind:>5} {'' if timed else '(warm-up) '}{1000 * (t1 - t0):9.1f} ms  "
              f"load {rec['load1']:.2f}", flush=True)

    def run_refs(self, refs: list[Contestant], kind: str, real: torch.Tensor, timed: bool) -> None:
        for ref in refs:
            _sync(self.device)
            t0 = time.perf_counter()
            ref.step(kind, real)
            _sync(self.device)
            self.add(ref.name, kind, t0, time.perf_counter(), timed)

    def summary(self, name: str) -> dict[str, Any]:
        recs = self.records.get(name, [])
        timed = [r for r in recs if r["timed"]]
        med = {k: statistics.median([r["s"] for r in timed if r["kind"] == k])
               for k in KIND_WEIGHTS if any(r["kind"] == k for r in timed)}
        if set(med) == set(KIND_WEIGHTS):
            amort = sum(KIND_WEIGHTS[k] * med[k] for k in med) / sum(KIND_WEIGHTS.values())
        else:
            amort = med.get("plain")
        out = {"median_s": med, "amortised_s_per_step": amort, "steps_timed": len(timed),
               "load1": [r["load1"] for r in recs]}
        if recs and len(timed) < len(recs) and amort:
            out["first_step_s"] = recs[0]["s"]
        return out


def _schedule(model: str, cycles: int) -> list[tuple[str, bool]]:
    if model == "dcgan":
        return [("plain", False)] + [("plain", True)] * cycles
    return [("plain", False)] + [(k, True) for _ in range(cycles) for k in ("plain", "pl", "r1pl")]


def run(args) -> dict[str, Any]:
    import lightning as L

    device = torch.device(args.device)
    torch.manual_seed(0)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    else:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # true fp32 for all
        torch.backends.cudnn.benchmark = True
    schedule = _schedule(args.model, args.cycles)
    race = Race(device)
    refs: list[Contestant] = []
    skipped: dict[str, str] = {}

    def want(name: str, env: str) -> str | None:
        if name not in args.references:
            return None
        root = os.environ.get(env)
        if not root or not Path(root).is_dir():
            skipped[name] = f"{env} is not set to a checkout; {name} skipped"
            print(f"SKIP {name}: {skipped[name]}", flush=True)
            return None
        return root

    if args.model == "stylegan2":
        from genface.models.stylegan2 import StyleGAN2

        net = StyleGAN2(resolution=args.resolution, z_dim=args.z_dim, w_dim=args.z_dim, mapping_layers=8,
                        channel_base=args.channel_base, channel_max=args.channel_max,
                        **({"fused_modconv": args.fused_modconv} if args.fused_modconv is not None else {}),
                        **({"fast_ops": args.fast_ops} if args.fast_ops is not None else {}),
                        num_fp16_res=args.num_fp16_res, fp16_dtype=args.fp16_dtype,
                        conv_clamp=256.0 if args.num_fp16_res else None)
        # G_ema (ema_kimg 10) is the module's since issue 14: its update is part of the timed step
        module = BenchModule(net, objective=dict(r1_gamma=10.0, r1_every=16, pl_weight=2.0, pl_every=4,
                                                 pl_batch_shrink=2, style_mixing_prob=0.9), ema_kimg=10.0)
        if args.channels_last:
            module.net.to(memory_format=torch.channels_last)
            module.channels_last = True
        if args.compile:  # genface's compile mode; its lazy-regularisation steps run eagerly (no recompile)
            from genface.models.stylegan2 import compile_stylegan2

            compile_stylegan2(module.net)
            module = _EagerRegularisers(module)
        for name, env, cls in (("rosinality", "GENFACE_REF_ROSINALITY", RosinalityStyleGAN2),
                               ("nvlabs", "GENFACE_REF_NVLABS", NVlabsStyleGAN2)):
            root = want(name, env)
            if root:
                try:
                    refs.append(cls(root, args, device))
                except Exception as e:  # a reference that does not build is reported, not fatal
                    skipped[name] = f"failed to build: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
                    print(f"SKIP {name}: {skipped[name]}", flush=True)
    else:
        from genface.models.dcgan import DCGAN

        net = DCGAN(resolution=args.resolution, z_dim=100, ngf=64, ndf=64)
        module = _DCGANBench(net, objective={"loss": "non_saturating"}, lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
                             ema_kimg=None)
        if args.channels_last:
            module.net.to(memory_format=torch.channels_last)
            module.channels_last = True
        if args.compile:
            module.compiled_g = torch.compile(module.net.generator)
            module.compiled_d = torch.compile(module.net.discriminator)
        root = want("examples", "GENFACE_REF_EXAMPLES")
        if root:
            refs.append(ExamplesDCGAN(root, args, device))
        if "genface_nets" in args.references:
            refs.append(ExamplesDCGAN(root, args, device, genface_nets=True))

    # genface's finiteness checks every N steps (divergence.check_every; 1 = every step, the default)
    module.configure_divergence(check_every=args.check_every)
    n_batches = len(schedule)
    data = torch.utils.data.DataLoader(RandomImages(args.batch_size * min(n_batches, 4), args.resolution),
                                       batch_size=args.batch_size, drop_last=True, num_workers=0)

    class Interleave(L.Callback):
        """Times genface's step, then runs every reference's step of the same kind on the same batch."""

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            kind, _ = schedule[batch_idx]
            pl_module.iteration = KIND_ITERATION[kind]  # the lazy schedule's step kind for this batch
            _sync(device)
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            _sync(device)
            kind, timed = schedule[batch_idx]
            race.add("genface", kind, self.t0, time.perf_counter(), timed)
            real = batch["image"]
            race.run_refs(refs, kind, real, timed)

    callbacks = [Interleave()]
    trainer = L.Trainer(accelerator="gpu" if device.type == "cuda" else "cpu", devices=1,
                        precision=PRECISIONS[args.precision], max_steps=n_batches, max_epochs=-1, logger=False,
                        callbacks=callbacks, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    gpu = GpuSampler() if device.type == "cuda" else None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    try:
        trainer.fit(module, train_dataloaders=_cycle_loader(data, n_batches))
    finally:
        if gpu is not None:
            gpu.close()
    wall = time.perf_counter() - t_start

    names = ["genface"] + [r.name for r in refs]
    results: dict[str, Any] = {}
    for name in names:
        s = race.summary(name)
        if name == "genface":
            s["parameters"] = sum(p.numel() for p in net.parameters())
            s["notes"] = {"module": type(module).__mro__[1].__name__, "precision": args.precision,
                          "fast_ops": getattr(net.config, "fast_ops", None),
                          "num_fp16_res": getattr(net.config, "num_fp16_res", None),
                          "channels_last": args.channels_last, "compile": args.compile,
                          "check_every": args.check_every}
        else:
            ref = next(r for r in refs if r.name == name)
            s["parameters"] = ref.parameters()
            s["notes"] = dict(ref.notes)
            if isinstance(ref, NVlabsStyleGAN2):
                s["notes"]["custom_ops"] = ref.custom_ops()
        amort = s["amortised_s_per_step"]
        if amort:
            s["s_per_kimg"] = 1000 * amort / args.batch_size
            if args.compile and name == "genface" and "first_step_s" in s:
                s["compile_s_estimate"] = s["first_step_s"] - s["median_s"].get("plain", 0.0)
        if device.type == "cuda":
            s["peak_mem_gib"] = race.peak_mem.get(name)
            if gpu is not None:
                s["gpu_util_mean_pct"] = gpu.mean_between(race.windows.get(name, []))
        results[name] = s
    g = results["genface"]["amortised_s_per_step"]
    for name in names[1:]:
        r = results[name]["amortised_s_per_step"]
        results[name]["ratio_genface_over_this"] = g / r if (g and r) else None
    meta = {"model": args.model, "device": _device_name(device), "torch": torch.__version__,
            "threads": torch.get_num_threads() if device.type == "cpu" else None,
            "args": {k: str(v) for k, v in vars(args).items()}, "wall_s": wall,
            "load_before": load_before, "load_after": os.getloadavg(), "skipped": skipped,
            "peak_rss_mib_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "driver": _driver() if device.type == "cuda" else None}
    _print_table(meta, results, args)
    return {"meta": meta, "results": results}


class _DCGANBench(GANModule):
    """GANModule with the compile / channels_last hooks of ``BenchModule``."""

    compiled_g = None
    compiled_d = None
    channels_last = False

    def generator_forward(self, z, training=False):
        return (self.compiled_g or self.net.generator)(z)

    def discriminator_forward(self, x):
        return (self.compiled_d or self.net.discriminator)(x).flatten()

    on_after_batch_transfer = BenchModule.on_after_batch_transfer


def _EagerRegularisers(module):
    """The same module whose R1 / path-length steps run under ``torch.compiler.set_stance("force_eager")``
    (compiled graphs have no double backward); plain steps run the compiled graphs."""
    step = module.training_step
    obj = module.objective

    def training_step(batch, batch_idx):
        reg = module.iteration % obj.r1_every == 0 or module.iteration % obj.pl_every == 0
        with torch.compiler.set_stance("force_eager") if reg else contextlib.nullcontext():
            return step(batch, batch_idx)

    module.training_step = training_step
    return module


def _cycle_loader(loader, n: int):
    """A loader of exactly ``n`` batches (``loader`` repeated), one per scheduled step."""
    batches = []
    while len(batches) < n:
        batches.extend(loader)
    return torch.utils.data.DataLoader(batches[:n], batch_size=None, shuffle=False)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs)"


def _driver() -> str | None:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20).stdout.strip() or None
    except (FileNotFoundError, OSError, subprocess.TimeoutExpired):
        return None


def _print_table(meta: dict[str, Any], results: dict[str, Any], args) -> None:
    loads = [x for r in results.values() for x in r["load1"]]
    print(f"\n{args.model} {args.resolution} px, batch {args.batch_size}, {meta['device']}, torch {meta['torch']}, "
          f"precision {args.precision}; load average (1 min) over the run: min {min(loads):.2f} / "
          f"median {statistics.median(loads):.2f} / max {max(loads):.2f}; wall {meta['wall_s']:.0f} s\n")
    kinds = [k for k in KIND_WEIGHTS if any(k in r["median_s"] for r in results.values())]
    print("| contestant | params | " + " | ".join(f"{k} ms" for k in kinds)
          + " | amortised ms/step | s/kimg | genface / this | notes |")
    print("|---" * (len(kinds) + 6) + "|")
    for name, r in results.items():
        med = " | ".join(f"{1000 * r['median_s'][k]:.0f}" if k in r["median_s"] else "-" for k in kinds)
        amort = r["amortised_s_per_step"]
        ratio = r.get("ratio_genface_over_this")
        extra = {k: r[k] for k in ("peak_mem_gib", "gpu_util_mean_pct", "compile_s_estimate") if r.get(k) is not None}
        notes = {k: v for k, v in r["notes"].items() if k != "root"}
        print(f"| {name} | {r['parameters']:,} | {med} | {1000 * amort:.0f} | {r.get('s_per_kimg', float('nan')):.1f} | "
              f"{'-' if ratio is None else f'{ratio:.3f}'} | {json.dumps({**notes, **extra})} |")
    for name, why in meta["skipped"].items():
        print(f"| {name} | skipped: {why} |")


def main(argv=None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=["stylegan2", "dcgan"], default="stylegan2", help="which race")
    p.add_argument("--references", nargs="+", default=None,
                   help="contestants beside genface (stylegan2: rosinality nvlabs; dcgan: examples genface_nets)")
    p.add_argument("--resolution", type=int, default=None, help="image size (stylegan2: 64, dcgan: 64)")
    p.add_argument("--batch-size", type=int, default=None, help="images per step (stylegan2: 4, dcgan: 64)")
    p.add_argument("--cycles", type=int, default=None,
                   help="timed rounds (stylegan2: of plain, pl, r1pl; default 1; dcgan: steps, default 10)")
    p.add_argument("--channel-base", type=int, default=32768, help="StyleGAN2 channel_base (config F: 32768 = "
                   "rosinality channel_multiplier 2; 16384 = multiplier 1)")
    p.add_argument("--channel-max", type=int, default=512, help="StyleGAN2 channel_max")
    p.add_argument("--z-dim", type=int, default=512, help="StyleGAN2 z_dim = w_dim")
    p.add_argument("--fused-modconv", type=lambda s: {"true": True, "false": False}[s.lower()], default=None,
                   help="genface StyleGAN2Config.fused_modconv (true/false; default: the config's)")
    p.add_argument("--fast-ops", type=lambda s: {"true": True, "false": False}[s.lower()], default=None,
                   help="genface StyleGAN2Config.fast_ops (true/false; default: the config's)")
    p.add_argument("--precision", choices=sorted(PRECISIONS), default="fp32", help="genface's Lightning precision")
    p.add_argument("--num-fp16-res", type=int, default=0,
                   help="genface StyleGAN2Config.num_fp16_res (with conv_clamp 256; 0 = fp32 networks)")
    p.add_argument("--fp16-dtype", choices=["float16", "bfloat16"], default="float16",
                   help="genface StyleGAN2Config.fp16_dtype for --num-fp16-res")
    p.add_argument("--nvlabs-fp16-res", type=int, default=0, help="NVlabs num_fp16_res (0 = fp32; 4 = its default)")
    p.add_argument("--channels-last", action="store_true", help="channels_last for genface (and DCGAN references)")
    p.add_argument("--compile", action="store_true", help="torch.compile genface's G and D")
    p.add_argument("--no-ref-ops", action="store_true", help="on CUDA, do not compile rosinality's custom ops")
    p.add_argument("--check-every", type=int, default=1,
                   help="genface's divergence.check_every: finiteness checks (host-device syncs) every N steps")
    p.add_argument("--threads", type=int, default=1, help="CPU threads")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    p.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = p.parse_args(argv)
    sg2 = args.model == "stylegan2"
    args.references = args.references or (["rosinality", "nvlabs"] if sg2 else ["examples", "genface_nets"])
    args.resolution = args.resolution or 64
    args.batch_size = args.batch_size or (4 if sg2 else 64)
    args.cycles = args.cycles or (1 if sg2 else 10)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*conv2d_gradfix not supported.*")
    out = run(args)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
