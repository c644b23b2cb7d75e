"""How well genface's invisible watermark survives, and how often it is found where it is not.

Measures, for the watermark of :mod:`genface.provenance.watermark` (``dwtDctSvd``, 40 bits)
and, for comparison, the same payload with ``invisible-watermark``'s plain ``dwtDct``:

* bit accuracy (share of the 40 payload bits read back) and detection rate (>= 22 of the
  24 magic bits) after: nothing, JPEG at q 90 / 75 / 50, a 0.5x resize (as the verifier
  reads it: at the new size, then retried at 2x; and after scaling back up), a 10 % crop
  (the central 90 % x 90 %), at 64, 128 and 256 px, on UTKFace faces and SyntheticFaces
  renders;
* per-frame bit accuracy of a video swapped by genface's own video path
  (:func:`genface.faces.convert.swap_video` on SyntheticFaces renders) after an H.264
  re-encode at CRF 23 and 28;
* the false-positive rate: detections on unmarked real images (UTKFace adults, native
  200 px, and SyntheticFaces raw renders, 128 px), ``--n-fp`` in all (half each).

    python experiments/watermark_robustness.py --out logs/watermark_robustness
    python experiments/watermark_robustness.py --n-marked 20 --n-fp 100 --sizes 128   # quick

Writes ``results.json`` and ``table.md`` into ``--out``. UTKFace is read from
``$GENFACE_DATA/utkface_adults`` (research use only, not redistributed).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from genface.provenance import watermark as wm  # noqa: E402

HASH = "5eedc0de"  # a fixed model-hash prefix for the marked images


# ---- images ------------------------------------------------------------------------------

def utk_files() -> list[Path]:
    root = os.environ.get("GENFACE_DATA")
    if not root or not (Path(root) / "utkface_adults").is_dir():
        raise SystemExit("set GENFACE_DATA to the folder holding utkface_adults/")
    return sorted((Path(root) / "utkface_adults").glob("*.jpg"))


def load(path: Path, size: int | None = None) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if size is not None:
            im = im.resize((size, size), Image.BICUBIC)
        return np.asarray(im).copy()


def renders(n: int, resolution: int, seed: int, num_identities: int | None = None) -> np.ndarray:
    """SyntheticFaces raw renders (the renderer's own path: unmarked pixels), (n, H, W, 3) uint8;
    image ``i`` shows identity ``i % num_identities`` (None = n // 4)."""
    from genface.data import SyntheticFaces

    k = num_identities or max(1, n // 4)
    ds = SyntheticFaces(num_images=n, num_identities=k, resolution=resolution, seed=seed, cache=False)
    return ds.images.permute(0, 2, 3, 1).contiguous().numpy()


# ---- attacks -----------------------------------------------------------------------------

def jpeg(rgb: np.ndarray, q: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=q)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB")).copy()


def half(rgb: np.ndarray) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA)


def half_and_back(rgb: np.ndarray) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    return cv2.resize(half(rgb), (w, h), interpolation=cv2.INTER_CUBIC)


def crop10(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    dy, dx = round(0.05 * h), round(0.05 * w)
    return rgb[dy:h - dy, dx:w - dx].copy()


ATTACKS = {"none": lambda x: x, "jpeg q90": lambda x: jpeg(x, 90), "jpeg q75": lambda x: jpeg(x, 75),
           "jpeg q50": lambda x: jpeg(x, 50), "resize 0.5x": half, "resize 0.5x then back": half_and_back,
           "crop 10%": crop10}


# ---- the two methods ----------------------------------------------------------------------

def svd_embed(rgb):
    return wm.embed(rgb, HASH)


def svd_bits(rgb):
    """What genface's verifier reads: :func:`genface.provenance.watermark.detect`, with its
    2x-rescale retry when the picture as given is not marked."""
    det = wm.detect(rgb)
    return np.array([int(b) for b in det.bits], dtype=np.int64) if det.bits else None


def dct_embed(rgb):
    from imwatermark.maxDct import EmbedMaxDct

    bgr = np.ascontiguousarray(rgb[..., ::-1])
    out = EmbedMaxDct(list(wm.payload_bits(HASH)), wmLen=wm.PAYLOAD_BITS).encode(bgr)
    return np.ascontiguousarray(out[..., ::-1])


def dct_bits(rgb):
    import cv2
    import pywt
    from imwatermark.maxDct import EmbedMaxDct

    if not wm.can_mark(*rgb.shape[:2]):
        return None
    h, w = rgb.shape[:2]
    yuv = cv2.cvtColor(np.ascontiguousarray(rgb[..., ::-1]), cv2.COLOR_BGR2YUV)
    ll, _ = pywt.dwt2(yuv[: h // 4 * 4, : w // 4 * 4, 1], "haar")
    votes = EmbedMaxDct([], wmLen=wm.PAYLOAD_BITS).decode_frame(ll, 36, [[] for _ in range(wm.PAYLOAD_BITS)])  # its default step
    return np.array([np.mean(v) > 0.5 if v else 0 for v in votes], dtype=np.int64)


#: genface's watermark (with the verifier's rescale retry), and the plain method for comparison
#: (no retry).
METHODS = {"dwtDctSvd": (svd_embed, svd_bits), "dwtDct": (dct_embed, dct_bits)}


def score(bits, expected) -> tuple[float, bool]:
    if bits is None:
        return float("nan"), False
    return float((bits == expected).mean()), int((bits[: wm.MAGIC_BITS] == expected[: wm.MAGIC_BITS]).sum()) >= wm.MAGIC_MIN_CORRECT


# ---- measurements --------------------------------------------------------------------------

def robustness(args, files) -> list[dict]:
    import cv2

    expected = wm.payload_bits(HASH)
    rows = []
    for size in args.sizes:
        half_n = args.n_marked // 2
        sources = {"UTKFace": [load(f, size) for f in files[:half_n]],
                   "SyntheticFaces": list(renders(args.n_marked - half_n, size, seed=7))}
        for method in args.methods:
            embed, read = METHODS[method]
            t0 = time.perf_counter()
            acc = {a: [] for a in ATTACKS}
            found = {a: [] for a in ATTACKS}
            psnr = []
            for _src, images in sources.items():
                for img in images:
                    marked = embed(img)
                    psnr.append(cv2.PSNR(img, marked))
                    for name, attack in ATTACKS.items():
                        a, f = score(read(attack(marked)), expected)
                        acc[name].append(a)
                        found[name].append(f)
            row = {"method": method, "size": size, "n": sum(len(v) for v in sources.values()),
                   "psnr_db": float(np.mean(psnr)), "seconds": time.perf_counter() - t0,
                   "bit_accuracy": {k: float(np.nanmean(v)) if not np.all(np.isnan(v)) else None for k, v in acc.items()},
                   "found": {k: float(np.mean(v)) for k, v in found.items()}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def video(args, out: Path) -> dict:
    """Swap a synthetic-face video with genface's own video path, re-encode it, decode per frame."""
    import av
    import torch

    from genface import provenance
    from genface.faces.convert import FaceSwapper, swap_video
    from genface.faces.io import VideoReader, VideoWriter
    from genface.models.faceswap import FaceSwap

    frames = renders(2 * args.video_frames, args.video_size, seed=3, num_identities=2)[::2]  # identity 0 throughout
    src = out / "source.mp4"
    # The source stands in for real footage, so it is written without the watermark/manifest
    # (the explicit, logged switch), and switched back on for the swap.
    provenance.configure(watermark=False, c2pa=False)
    with VideoWriter(src, Fraction(10)) as w:
        for f in frames:
            w.write(np.ascontiguousarray(f))
    provenance.configure(watermark=True, c2pa=True)
    torch.manual_seed(0)
    model = FaceSwap(width=1 / 16)  # untrained: the watermark does not care what the face looks like
    swapper = FaceSwapper(model, identity=1, detector="hog", color="avg")
    swapped = out / "swapped.mp4"
    report = swap_video(swapper, src, swapped, model_name="FaceSwap(width=1/16), untrained")
    expected_hash = provenance.weights_sha256(model)
    expected = wm.payload_bits(expected_hash)
    result = {"frames": report.frames, "frames_with_face": report.frames_with_face, "size": args.video_size}
    with VideoReader(swapped) as r:
        original = list(r)
    for crf in (None, 23, 28):
        if crf is None:
            decoded = original
        else:
            path = out / f"reencoded_crf{crf}.mp4"
            with av.open(str(path), "w") as c:
                s = c.add_stream("libx264", rate=10)
                s.width, s.height, s.pix_fmt, s.options = args.video_size, args.video_size, "yuv420p", {"crf": str(crf)}
                for f in original:
                    for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                        c.mux(p)
                for p in s.encode():
                    c.mux(p)
            with VideoReader(path) as r:
                decoded = list(r)
        per = [score(svd_bits(f), expected) for f in decoded]  # each frame on its own
        accs = [a for a, _ in per]
        key = "as written (crf 18)" if crf is None else f"h264 crf {crf}"
        result[key] = {"mean_bit_accuracy": float(np.mean(accs)), "min_bit_accuracy": float(np.min(accs)),
                       "frames_found": float(np.mean([f for _, f in per])), "per_frame": accs}
        print(key, json.dumps({k: v for k, v in result[key].items() if k != "per_frame"}), flush=True)
    return result


def false_positives(args, files) -> dict:
    n_utk = args.n_fp // 2
    pool = files[args.n_marked: args.n_marked + n_utk]  # not the images marked above
    images = [("UTKFace", load(f)) for f in pool]
    images += [("SyntheticFaces", r) for r in renders(args.n_fp - n_utk, 128, seed=11)]
    expected = wm.payload_bits(None)
    res = {}
    for method in args.methods:
        _, read = METHODS[method]
        hits, magic = {"UTKFace": 0, "SyntheticFaces": 0}, []
        for src, img in images:
            bits = read(img)
            m = int((bits[: wm.MAGIC_BITS] == expected[: wm.MAGIC_BITS]).sum())
            magic.append(m)
            hits[src] += m >= wm.MAGIC_MIN_CORRECT
        res[method] = {"n": len(images), "false_positives": sum(hits.values()), "by_source": hits,
                       "rate": sum(hits.values()) / len(images), "max_magic_correct": max(magic),
                       "magic_correct_histogram": {str(k): magic.count(k) for k in sorted(set(magic))}}
        print("false positives", method, json.dumps(res[method]), flush=True)
    return res


def table(results: dict) -> str:
    lines = ["| method | size | n | PSNR dB | " + " | ".join(ATTACKS) + " |",
             "|---|---|---|---|" + "---|" * len(ATTACKS)]
    for r in results["robustness"]:
        cells = [f"{r['bit_accuracy'][a]:.3f} ({100 * r['found'][a]:.0f}%)" if r["bit_accuracy"][a] is not None
                 else "n/a" for a in ATTACKS]
        lines.append(f"| {r['method']} | {r['size']} | {r['n']} | {r['psnr_db']:.1f} | " + " | ".join(cells) + " |")
    v = results.get("video")
    if v:
        lines += ["", f"Video: {v['frames']} frames of {v['size']} px swapped by genface "
                      f"({v['frames_with_face']} with a face detected), per-frame bit accuracy:", "",
                  "| video | mean | min | frames found |", "|---|---|---|---|"]
        for k in ("as written (crf 18)", "h264 crf 23", "h264 crf 28"):
            lines.append(f"| {k} | {v[k]['mean_bit_accuracy']:.3f} | {v[k]['min_bit_accuracy']:.3f} | "
                         f"{100 * v[k]['frames_found']:.0f}% |")
    lines += ["", "| false positives | images | found | rate | most magic bits correct |", "|---|---|---|---|---|"]
    for m, fp in results["false_positives"].items():
        lines.append(f"| {m} | {fp['n']} | {fp['false_positives']} | {fp['rate']:.4f} | {fp['max_magic_correct']}/24 |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="logs/watermark_robustness", help="output folder")
    p.add_argument("--n-marked", type=int, default=100, help="marked images per size (half UTKFace, half renders)")
    p.add_argument("--n-fp", type=int, default=1000, help="unmarked images for the false-positive rate")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256], help="image sides in pixels")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--video-frames", type=int, default=24, help="frames of the swapped video (0 = skip)")
    p.add_argument("--video-size", type=int, default=256, help="side of the video frames")
    p.add_argument("--only-video", action="store_true", help="measure the swapped video only")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = utk_files()
    t0 = time.perf_counter()
    results = {"payload_bits": wm.PAYLOAD_BITS, "threshold": f"{wm.MAGIC_MIN_CORRECT}/{wm.MAGIC_BITS} magic bits",
               "robustness": [] if args.only_video else robustness(args, files),
               "false_positives": {} if args.only_video else false_positives(args, files)}
    if args.video_frames:
        results["video"] = video(args, out)
    results["wall_time_s"] = time.perf_counter() - t0
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "table.md").write_text(table(results) + "\n")
    print(table(results))
    print(f"wall time {results['wall_time_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
