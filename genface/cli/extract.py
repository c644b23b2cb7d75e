"""``genface-extract``: detect, align and save face crops from images or a video.

Example::

    genface-extract path/to/video.mp4 faces_a/ --size 256 --select largest
    genface-extract photos/ faces_b/ --select match --reference b.jpg

Writes ``<out>/faces/*.png`` and ``<out>/alignments.json`` (per-face transforms and
landmarks); prints the number of frames with a face.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

# light imports only (--help without torch); the pipeline is imported in main()
from genface.faces.options import DEFAULT_PADDING, DETECTORS, SELECT_MODES


def _padding(value: str) -> float | str:
    return value if value == "auto" else float(value)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genface-extract", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("source", help="an image, a folder of images (recursive) or a video")
    p.add_argument("output", help="output folder (faces/ and alignments.json)")
    p.add_argument("--size", type=int, default=256, help="aligned crop side in pixels")
    p.add_argument("--padding", type=_padding, default=DEFAULT_PADDING,
                   help="template padding per side (fraction of the tight face crop), or 'auto': "
                   "the largest margin the sources allow (tight crops such as Extended Yale B)")
    p.add_argument("--fill", choices=("mean", "replicate"), default="mean",
                   help="crop pixels outside the source: the source's mean colour or its replicated border")
    p.add_argument("--detector", choices=DETECTORS, default="auto",
                   help="auto = dlib HOG if installed, else OpenCV Haar (estimated landmarks)")
    p.add_argument("--landmarks", type=int, choices=(5, 68), default=68, help="dlib landmark points")
    p.add_argument("--select", choices=SELECT_MODES, default="largest",
                   help="faces per frame: the largest, all, or the one matching --reference")
    p.add_argument("--reference", help="image of the person to keep (with --select match)")
    p.add_argument("--threshold", type=float, default=0.6,
                   help="dlib descriptor distance below which a face matches the reference")
    p.add_argument("--every", type=int, default=1, help="keep one frame/image in EVERY")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log which detector is used etc.")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from genface.faces.extract import extract_faces
    from genface.faces.io import MediaError

    out = Path(args.output)
    created = [p for p in (out, out / "faces") if not p.exists()]
    try:
        summary = extract_faces(
            args.source, args.output, size=args.size, padding=args.padding,
            detector=args.detector, landmarks=args.landmarks, select=args.select,
            reference=args.reference, threshold=args.threshold, every=args.every,
            max_frames=args.max_frames, progress=not args.no_progress, fill=args.fill,
        )
    except (MediaError, ImportError, ValueError) as e:
        _remove_empty(created)  # a rejected input leaves no empty output folder behind
        print(f"genface-extract: error: {e}", file=sys.stderr)
        return 2
    print(f"{summary['faces']} face(s) from {summary['frames_with_face']}/{summary['frames']} "
          f"frame(s) ({100 * summary['hit_rate']:.1f}%) with detector {summary['detector']}"
          + (" (landmarks estimated from boxes)" if summary["landmarks_estimated"] else "")
          + f" -> {args.output}")
    retried = f", {summary['found_on_retry']} found on the padded retry" if summary["found_on_retry"] else ""
    print(f"crop padding {summary['padding']:.3f} ({summary['padding_mode']}), "
          f"{100 * summary['mean_valid_fraction']:.1f}% of crop pixels inside their source{retried}")
    if summary["skipped_files"]:
        print(f"skipped {summary['skipped_files']} non-image file(s) (listed in alignments.json)")
    return 0


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders of ``folders`` (made by this run) that are still empty, deepest first."""
    for p in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        try:
            p.rmdir()  # only ever removes an empty folder
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
