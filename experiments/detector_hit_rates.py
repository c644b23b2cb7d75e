"""Face detector hit rates on the shared real face sets, without and with the padded retry.

    GENFACE_DATA=/path/to/shared/data python experiments/detector_hit_rates.py [orl_faces yale_b]

Counts the images of each set in which dlib's HOG detector (68 landmarks) finds a face, first
with ``retry_padding=0`` (the detector alone), then with the default padded retry of
:class:`genface.faces.detect.FaceDetector`. Non-image files are not counted.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from genface.faces.detect import FaceDetector
from genface.faces.io import list_images, read_image


def main(argv: list[str]) -> int:
    root = Path(os.environ.get("GENFACE_DATA", "."))
    sets = argv or ["orl_faces", "yale_b"]
    detectors = {"before (no retry)": FaceDetector("hog", 68, retry_padding=0),
                 "after (padded retry)": FaceDetector("hog", 68)}
    for name in sets:
        images = [read_image(f) for f in list_images(root / name)]
        for label, det in detectors.items():
            t = time.perf_counter()
            hit = sum(bool(det.detect(im)) for im in images)
            print(f"{name} {label}: {hit}/{len(images)} = {100 * hit / len(images):.1f} % "
                  f"({time.perf_counter() - t:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
