"""``genface-provenance``: check the provenance marks of a file genface wrote.

Example::

    genface-provenance verify samples.png
    genface-provenance verify swapped.mp4 --json

``verify`` reads the C2PA manifest (valid / tampered / invalid / absent, who signed it, its
assertions), decodes the invisible watermark (found or not, the bits, their accuracy
against the manifest's payload) and lists the plain metadata. Exit status: 0 when the file
carries a valid manifest or the watermark, 1 when it carries neither, 2 on errors.
"""

from __future__ import annotations

import argparse
import logging
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genface-provenance", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="check a PNG, JPEG or video",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    v.add_argument("files", nargs="+", help="files to check")
    v.add_argument("--json", action="store_true", help="print the reports as JSON")
    v.add_argument("--max-frames", type=int, default=60, help="video frames decoded for the watermark")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from genface.provenance.check import verify

    status = 0
    for i, f in enumerate(args.files):
        try:
            report = verify(f, max_frames=args.max_frames)
        except Exception as e:  # unreadable file: say which, go on with the rest
            print(f"{f}: error: {e}", file=sys.stderr)
            status = 2
            continue
        print(report.to_json() if args.json else ("\n" if i else "") + report.text())
        if report.manifest != "valid" and not report.watermark.get("found"):
            status = max(status, 1)
    return status


if __name__ == "__main__":
    sys.exit(main())
