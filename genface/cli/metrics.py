"""``genface-metrics``: score a folder of images, or a saved model, against a folder of images.

    genface-metrics generated/ real/ --metrics swd2k fsd_synth1k --json scores.json
    genface-metrics logs/train/runs/<run>/pretrained real/ --metrics swd2k
    genface-metrics --list

Any metric of the registry (:mod:`genface.metrics`) whose needs the inputs cover: a folder
supplies generated images (``"generator"``); a saved model supplies ``generate`` (and
``reconstruct``, ``mapping`` for the metrics that need them); the reference folder supplies
``"reference"``. Images are read with :class:`genface.data.folder.FolderFaces` (RGB, centre
square, resized to ``--resolution``). The result is JSON: the inputs, the protocol and every
value the metrics return.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genface-metrics", description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("generated", nargs="?", help="a folder of images, or a save_pretrained model folder")
    p.add_argument("reference", nargs="?", help="a folder of reference (real) images")
    p.add_argument("--metrics", nargs="+", default=["swd2k"], help="registered metric names (see --list)")
    p.add_argument("--resolution", type=int, default=None,
                   help="side the images are compared at (default: the model's, else 64)")
    p.add_argument("--max-images", type=int, default=None, help="use at most this many reference images")
    p.add_argument("--json", default=None, help="also write the result to this file")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    p.add_argument("--seed", type=int, default=0, help="base seed of generated batches (models)")
    p.add_argument("--list", action="store_true", help="list the registered metrics and exit")
    return p


def list_registered() -> str:
    """One line per registered metric: name, needs, description."""
    from genface.metrics import get_metric, list_metrics

    rows = []
    for name in list_metrics():
        spec = get_metric(name)
        rows.append(f"{name:24s} needs {'+'.join(spec.needs):28s} {spec.description}")
    return "\n".join(rows)


def is_model_folder(path: str | Path) -> bool:
    """True for a ``save_pretrained`` folder (``config.json`` + ``model.safetensors``)."""
    path = Path(path)
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file()


class FolderGenerator:
    """``generator_fn(n, seed)`` over a folder's images, in file order (the seed is ignored:
    successive calls return successive images; asking for more than the folder holds raises)."""

    def __init__(self, images):
        self.images = images  # (N, 3, H, W) float in [-1, 1]
        self.offset = 0

    def __call__(self, n: int, seed: int = 0):
        if self.offset + n > len(self.images):
            raise ValueError(f"the generated folder has {len(self.images)} images and the metric wants "
                             f"more (its name states the count: swd2k compares 2048, msssim_pairs1k "
                             "draws 1000 pairs); add images or pick a metric with a smaller count")
        out = self.images[self.offset:self.offset + n]
        self.offset += n
        return out


def _folder(path: str | Path, resolution: int, max_images: int | None = None):
    from genface.data.folder import FolderFaces

    return FolderFaces(path, resolution=resolution, max_images=max_images, progress=False)


def evaluate(generated: str | Path, reference: str | Path, metrics: list[str], resolution: int | None = None,
             max_images: int | None = None, device: str = "cpu", batch_size: int = 64,
             seed: int = 0) -> dict[str, Any]:
    """Compute ``metrics`` for ``generated`` (folder or model) against the ``reference`` folder."""
    from genface.metrics import compute_metrics

    kwargs: dict[str, Any] = {}
    folder_images = None
    if is_model_folder(generated):
        from genface.models import from_pretrained

        model = from_pretrained(generated, map_location=device)
        resolution = resolution or getattr(model.config, "resolution", 64)
        if hasattr(model, "generate"):
            kwargs["generator_fn"] = lambda n, s: model.generate(n, seed=s)
        if hasattr(model, "reconstruct"):
            kwargs["recon_fn"] = model.reconstruct
        if hasattr(model, "mapping"):
            kwargs["model"] = model
        source = {"kind": "model", "class": type(model).__name__, "path": str(generated)}
    else:
        resolution = resolution or 64
        gen = _folder(generated, resolution)
        folder_images = gen.images.float().div(127.5).sub(1)
        source = {"kind": "folder", "path": str(generated), "num_images": len(gen)}
    ref = _folder(reference, resolution, max_images)
    common = dict(reference=ref, device=device, batch_size=batch_size, seed=seed,
                  reference_key=f"folder-{ref.cache_file.stem if ref.cache_file else 'mem'}")
    if folder_images is None:
        values = compute_metrics(metrics, **common, **kwargs)
    else:  # every metric reads the folder from its first image (as a model's seeds repeat)
        values = {}
        for name in metrics:
            values.update(compute_metrics([name], generator_fn=FolderGenerator(folder_images), **common))
    import genface

    return {"generated": source, "reference": {"path": str(reference), "num_images": len(ref)},
            "resolution": resolution, "metrics": values, "genface": genface.__version__}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        print(list_registered())
        return 0
    if not (args.generated and args.reference):
        parser.error("give GENERATED and REFERENCE (or --list)")
    try:
        result = evaluate(args.generated, args.reference, args.metrics, args.resolution, args.max_images,
                          args.device, args.batch_size, args.seed)
    except (FileNotFoundError, NotADirectoryError, KeyError, ValueError, ImportError) as e:
        print(f"genface-metrics: {e}", file=sys.stderr)
        return 1
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
