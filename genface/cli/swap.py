"""``genface-swap``: swap faces in images or a video with a trained FaceSwap model.

Example::

    genface-swap input.mp4 output.mp4 --model runs/faceswap/export --to 1
    genface-swap photos_a/ swapped/ --model runs/faceswap/export --to 1 --color avg

Every output is marked synthetic (PNG text chunks; video container metadata
``comment=synthetic`` and a sidecar ``<output>.json``). Frames without a face pass through
unchanged and are counted. Use it only with the consent of the people shown; never to
deceive, harass, defraud or make non-consensual imagery.
"""

from __future__ import annotations

import argparse
import logging
import sys

# light imports only (--help without torch); the pipeline is imported in main()
from genface.faces.options import COLORS, DEFAULT_PADDING, DETECTORS, MASKS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genface-swap", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("source", help="a video, an image or a folder of images")
    p.add_argument("output", help="output video (for a video), folder (for images) or .png")
    p.add_argument("--model", required=True,
                   help="FaceSwap (also FaceSwap-GAN) or CycleGAN folder written by save_pretrained")
    p.add_argument("--to", type=int, default=1, help="identity (decoder index) to swap into")
    p.add_argument("--detector", choices=DETECTORS, default="auto")
    p.add_argument("--padding", type=float, default=DEFAULT_PADDING,
                   help="template padding used when the training faces were extracted")
    p.add_argument("--mask", choices=MASKS, default="hull")
    p.add_argument("--color", choices=COLORS, default="reinhard", help="colour correction")
    p.add_argument("--erode", type=float, default=0.05, help="mask erosion (fraction of crop)")
    p.add_argument("--blur", type=float, default=0.08, help="mask blur (fraction of crop)")
    p.add_argument("--faces", choices=("all", "largest"), default="all")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


#: save_pretrained classes genface-swap converts with (each has ``swap(x, to, return_mask)``)
SWAP_MODELS = {"genface.models.faceswap.FaceSwap": ("genface.models.faceswap", "FaceSwap"),
               "genface.models.cyclegan.CycleGAN": ("genface.models.cyclegan", "CycleGAN")}


def load_swap_model(directory: str, map_location: str = "cpu"):
    """The swap model saved in ``directory``, by the class named in its config.json."""
    import importlib
    import json
    from pathlib import Path

    cfg = Path(directory) / "config.json"
    name = json.loads(cfg.read_text()).get("class") if cfg.is_file() else None
    module, cls = SWAP_MODELS.get(name or "genface.models.faceswap.FaceSwap", (None, None))
    if module is None:
        raise ValueError(f"{directory} holds a {name}; genface-swap converts with {sorted(SWAP_MODELS)}")
    return getattr(importlib.import_module(module), cls).from_pretrained(directory, map_location=map_location)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from genface.faces.convert import FaceSwapper, swap_file
    from genface.faces.io import MediaError

    try:
        model = load_swap_model(args.model, map_location=args.device)
        swapper = FaceSwapper(model, args.to, detector=args.detector, padding=args.padding,
                              mask=args.mask, color=args.color, erode=args.erode, blur=args.blur,
                              faces=args.faces, device=args.device)
        report = swap_file(swapper, args.source, args.output, progress=not args.no_progress,
                           model_name=str(args.model))
    except (MediaError, FileNotFoundError, ImportError, ValueError) as e:
        print(f"genface-swap: error: {e}", file=sys.stderr)
        return 2
    print(report.message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
