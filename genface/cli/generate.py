"""``genface-generate``: images, style-mixing grids and latent-walk videos from a saved model.

    genface-generate logs/train/runs/<run>/pretrained --seeds 0-15 --out samples/
    genface-generate MODEL --seeds 0-7 --psi 0.7 --noise-mode const --grid
    genface-generate MODEL --mix-rows 0-3 --mix-cols 10-14 --crossover 4     # StyleGAN family
    genface-generate MODEL --video walk.mp4 --seeds 0,5,9 --frames 48 --space w   # needs genface[video]

One image per seed (``model.generate(1, seed=s)``, the notebook API, so a seed gives the
same face here and in a notebook), written as PNGs carrying the synthetic provenance mark
(:mod:`genface.provenance`); videos carry it in their metadata. Any folder written by
``save_pretrained`` works: the class is read from its ``config.json``
(:func:`genface.models.from_pretrained`). Truncation, noise modes, style mixing and W-space
walks need a style-based model (ProGAN, StyleGAN, StyleGAN2: ``mapping`` + ``synthesis``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

NOISE_MODES = ("const", "random", "none")


def parse_seeds(text: str) -> list[int]:
    """``"0-3,7,10-11"`` -> ``[0, 1, 2, 3, 7, 10, 11]``."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if sep and lo:
            a, b = int(lo), int(hi)
            if b < a:
                raise argparse.ArgumentTypeError(f"seed range {part!r} runs backwards")
            seeds += range(a, b + 1)
        else:
            seeds.append(int(part))
    if not seeds:
        raise argparse.ArgumentTypeError(f"no seeds in {text!r}")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genface-generate", description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Outputs are synthetic and marked as such; see docs/responsible-use.md.")
    p.add_argument("model", help="a save_pretrained folder (config.json + model.safetensors)")
    p.add_argument("--out", default="generated", help="output folder (default: ./generated)")
    p.add_argument("--seeds", type=parse_seeds, default=None,
                   help="seeds, e.g. 0-15 or 1,5,9 (default: 0..n-1)")
    p.add_argument("--n", type=int, default=8, help="number of images when --seeds is not given")
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi (1 = none; style-based models)")
    p.add_argument("--cutoff", type=int, default=None, help="truncate only the first CUTOFF ws rows")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="const",
                   help="per-layer noise of style-based models: const (fixed buffers), random, none")
    p.add_argument("--grid", action="store_true", help="also write grid.png of all the images")
    p.add_argument("--no-images", action="store_true", help="skip the per-seed PNGs (e.g. with --video)")
    p.add_argument("--mix-rows", type=parse_seeds, default=None, help="style-mixing grid: row seeds (coarse styles)")
    p.add_argument("--mix-cols", type=parse_seeds, default=None, help="style-mixing grid: column seeds (fine styles)")
    p.add_argument("--crossover", type=int, default=None,
                   help="first ws row taken from the column seed (default: num_ws // 2)")
    p.add_argument("--video", default=None, help="write a latent walk through the seeds to this .mp4")
    p.add_argument("--frames", type=int, default=30, help="frames per transition of the walk")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of the video")
    p.add_argument("--space", choices=("z", "w"), default="z",
                   help="walk by slerp in Z or lerp in W (W: style-based models)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    return p


def _to_uint8(images):
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8 numpy."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def _style_based(model) -> bool:
    return hasattr(model, "mapping") and hasattr(model, "synthesis")


def _check_options(model, args) -> None:
    name = type(model).__name__
    if not hasattr(model, "generate"):
        raise SystemExit(f"genface-generate: {name} does not generate from noise"
                         + (" (it swaps faces: use genface-swap)" if hasattr(model, "swap") else ""))
    if not _style_based(model):
        asked = [flag for flag, on in (("--psi", args.psi != 1.0), ("--cutoff", args.cutoff is not None),
                                       ("--mix-rows/--mix-cols", args.mix_rows or args.mix_cols),
                                       ("--space w", args.space == "w")) if on]
        if asked:
            raise SystemExit(f"genface-generate: {name} is not style-based; {', '.join(asked)} need "
                             "ProGAN, StyleGAN or StyleGAN2")
    if (args.mix_rows is None) != (args.mix_cols is None):
        raise SystemExit("genface-generate: --mix-rows and --mix-cols go together")


def generate_images(model, seeds: list[int], psi: float = 1.0, noise_mode: str = "const",
                    cutoff: int | None = None):
    """One image per seed, ``(len(seeds), 3, H, W)`` in [-1, 1] (``model.generate(1, seed=s)``)."""
    import torch

    kwargs: dict[str, Any] = {}
    if _style_based(model):
        kwargs = {"truncation_psi": psi, "noise_mode": noise_mode, "truncation_cutoff": cutoff}
    return torch.cat([model.generate(1, seed=s, **kwargs) for s in seeds])


def _latent(model, seed: int):
    import torch

    return torch.randn(1, model.z_dim, generator=torch.Generator().manual_seed(seed))


def style_mixing_grid(model, rows: list[int], cols: list[int], crossover: int | None = None,
                      psi: float = 1.0, noise_mode: str = "const"):
    """The NVlabs-style grid: column seeds on top, row seeds on the left, cell (r, c) takes
    ws rows ``< crossover`` (coarse: pose, face shape) from row seed r and the rest from
    column seed c. Returns ``(len(rows) + 1, len(cols) + 1, 3, H, W)`` in [-1, 1], corner blank."""
    import torch

    num_ws = model.generator.num_ws if hasattr(model, "generator") else model.num_ws
    crossover = num_ws // 2 if crossover is None else crossover
    top = generate_images(model, cols, psi, noise_mode)
    left = generate_images(model, rows, psi, noise_mode)
    h, w = top.shape[-2:]
    grid = -torch.ones(len(rows) + 1, len(cols) + 1, 3, h, w)
    grid[0, 1:] = top
    grid[1:, 0] = left
    zc = torch.cat([_latent(model, s) for s in cols])
    for i, r in enumerate(rows):
        zr = _latent(model, r).expand(len(cols), -1)
        grid[i + 1, 1:] = model.style_mix(zr, zc, crossover, truncation_psi=psi, noise_mode=noise_mode).cpu()
    return grid


def latent_walk(model, seeds: list[int], frames: int, space: str = "z", psi: float = 1.0,
                noise_mode: str = "const"):
    """Frames through the seeds' latents in order, ``frames`` per transition: ``(T, 3, H, W)``."""
    import torch

    from genface.nn.latent import slerp

    if len(seeds) < 2:
        raise SystemExit("genface-generate: a walk needs at least two seeds")
    out = []
    for a, b in zip(seeds[:-1], seeds[1:]):
        z1, z2 = _latent(model, a), _latent(model, b)
        if _style_based(model):
            clip = model.interpolate(z1, z2, steps=frames + 1, space=space, truncation_psi=psi,
                                     noise_mode=noise_mode)
        else:
            device = next(model.parameters()).device
            t = torch.linspace(0, 1, frames + 1)[:, None]
            z = slerp(z1, z2, t).to(device)
            with torch.no_grad():
                clip = (model.decode(z) if hasattr(model, "decode") else model.generator(z)).clamp(-1, 1)
        out.append(clip[:-1].cpu())  # the end point starts the next transition
    out.append(clip[-1:].cpu())
    return torch.cat(out)


def make_grid(images, nrow: int | None = None):
    """(N, 3, H, W) -> one (3, H', W') image with a 2 px border (:func:`genface.utils.make_grid`)."""
    import math

    from genface.utils import make_grid as tile

    nrow = nrow or max(1, math.ceil(math.sqrt(len(images))))
    return tile(images, nrow=nrow, padding=2, pad_value=-1)


def run(args: argparse.Namespace) -> list[Path]:
    """Do what the parsed arguments ask; returns the files written."""
    import torch

    from genface import provenance
    from genface.models import from_pretrained

    model = from_pretrained(args.model, map_location=args.device)
    _check_options(model, args)
    org = provenance.origin(model)  # class + weights hash, for every file's manifest and watermark

    def save_png(image, path, extra):
        return provenance.save_image(image, path, org, extra)

    out = Path(args.out)
    seeds = args.seeds if args.seeds is not None else list(range(args.n))
    meta = {"model": type(model).__name__, "source": str(args.model), "truncation_psi": args.psi}
    written: list[Path] = []
    with torch.no_grad():
        if not args.no_images or args.grid:
            images = generate_images(model, seeds, args.psi, args.noise_mode, args.cutoff).cpu()
            if not args.no_images:
                for s, img in zip(seeds, images):
                    written.append(save_png((img + 1) / 2, out / f"seed{s:04d}.png", {**meta, "seed": s}))
            if args.grid:
                written.append(save_png((make_grid(images) + 1) / 2, out / "grid.png", meta))
        if args.mix_rows is not None:
            grid = style_mixing_grid(model, args.mix_rows, args.mix_cols, args.crossover, args.psi,
                                     args.noise_mode)
            flat = grid.flatten(0, 1)
            written.append(save_png((make_grid(flat, nrow=grid.shape[1]) + 1) / 2, out / "stylemix.png",
                                    {**meta, "rows": args.mix_rows, "cols": args.mix_cols}))
        if args.video is not None:
            from genface.faces.io import VideoWriter

            frames = latent_walk(model, seeds, args.frames, args.space, args.psi, args.noise_mode)
            path = Path(args.video)
            with VideoWriter(path, fps=args.fps, origin=org,
                             metadata={**provenance.video_metadata(org), "title": f"genface latent walk {seeds}"}) as vw:
                for frame in _to_uint8(frames):
                    vw.write(frame)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        written = run(args)
    except (FileNotFoundError, ValueError, ImportError) as e:
        print(f"genface-generate: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
