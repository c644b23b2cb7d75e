"""Score a FaceSwap run of ``experiment=faceswap_real`` on its held-out faces, and its curves.

    python experiments/faceswap_real.py RUN_DIR [--video-dir CROPS] [--out docs/assets/faceswap_real]
    python experiments/faceswap_real.py RUN_DIR --make-video PHOTO a_video.mp4   # a test video

Rebuilds the run's datamodule from ``RUN_DIR/.hydra/config.yaml``, loads the exported network
(``RUN_DIR/pretrained``) and runs the swap metrics of :mod:`genface.metrics.swap` (optionally
with the aligned crops of a video of A for ``swap_temporal``). Prints a markdown table of the
swaps beside the do-nothing baseline (the source faces themselves) and beside real photos of B
in the same light, writes it with the raw numbers as JSON, and plots ``val/swap_id_dlib`` and
``val/swap_pose_dlib`` against steps from ``RUN_DIR/metrics.csv``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def table(m: dict[str, float]) -> str:
    """The swaps beside the no-swap baseline and a real photo of B; rates as "share (k of n)"."""
    def f(k):
        v = m.get(k, float("nan"))
        return "n/a" if v != v else f"{v:.3f}"

    def rate(k, n_key):
        v, n = m.get(k, float("nan")), m.get(n_key, float("nan"))
        if v != v:
            return "n/a"
        return f"{100 * v:.0f} % ({round(v * n)} of {int(n)})" if n == n else f"{100 * v:.0f} %"

    n_a, n_b, n_r = "swap_id_dlib/num_swaps", "swap_id_dlib/num_b2a", "swap_id_dlib/real_b_num"
    rows = [
        ("face detected (dlib HOG)", rate("swap_id_dlib/detected", n_a), rate("swap_id_dlib/noswap_detected", n_a),
         rate("swap_id_dlib/real_b_detected", n_r)),
        ("retrieved as B, top-1 among all identities", rate("swap_id_dlib", n_a),
         rate("swap_id_dlib/noswap_top1_b", n_a), rate("swap_id_dlib/real_b_top1", n_r)),
        ("distance to A's centre (identity leakage)", f("swap_id_dlib/leakage"), f("swap_id_dlib/noswap_dist_a"),
         f("swap_id_dlib/real_b_leakage")),
        ("distance to B's centre", f("swap_id_dlib/dist_b"), f("swap_id_dlib/noswap_dist_b"),
         f("swap_id_dlib/real_b_dist_b")),
        ("68-landmark error vs the source face (NME)",
         f"{f('swap_pose_dlib')} ({int(m.get('swap_pose_dlib/num_pairs', 0))} pairs)", "0 (by definition)",
         f"{f('swap_pose_dlib/real_b')} ({int(m.get('swap_pose_dlib/real_b_pairs', 0))} pairs)"),
        ("the other way, B->A: detected", rate("swap_id_dlib/b2a_detected", n_b), "", ""),
        ("the other way, B->A: retrieved as A, top-1", rate("swap_id_dlib/b2a_top1", n_b), "", ""),
    ]
    out = ["| held-out faces of A | swap A->B | no swap (A itself) | real photo of B, same conditions |",
           "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(out)


def read_metrics(paths) -> list[dict[str, str]]:
    """The rows of the ``metrics.csv`` files of one run resumed several times, oldest first.

    A resumed run's CSV logger starts ``metrics.csv`` afresh, and a resume goes back to the
    last checkpoint, not to the last step: each file is cut where the next one starts.
    """
    import csv

    rows: list[dict[str, str]] = []
    for p in paths:
        with open(p) as f:
            part = list(csv.DictReader(f))
        first = min((int(r["step"]) for r in part if r.get("step")), default=None)
        if first is not None:
            rows = [r for r in rows if int(r["step"]) < first]
        rows += part
    return rows


def plot_curves(run_dir: Path, out: Path, earlier: list[Path] = (), n_swaps: int | None = None) -> Path | None:
    from genface.utils import pyplot

    plt = pyplot("the figures of this script")

    path = run_dir / "metrics.csv"
    if not path.is_file():
        return None
    rows = read_metrics([*earlier, path])
    series = {k: [] for k in ("val/swap_id_dlib", "val/swap_id_dlib/detected", "val/swap_id_dlib/b2a_top1",
                              "val/swap_pose_dlib", "val/swap_pose_dlib/real_b")}
    for r in rows:
        for k in series:
            if r.get(k):
                series[k].append((int(r["step"]), float(r[k])))
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    # detected drawn wide underneath: where every detected swap is retrieved the two coincide
    for k, lab, ls, lw, c in (("val/swap_id_dlib/detected", "A->B: face detected", "-", 5, "C1"),
                              ("val/swap_id_dlib", "A->B: B retrieved top-1", "-", 1.5, "C0"),
                              ("val/swap_id_dlib/b2a_top1", "B->A: A retrieved top-1", "--", 1.5, "C2")):
        if series[k]:
            ax[0].plot(*zip(*series[k]), marker="o", ls=ls, lw=lw, color=c, label=lab, alpha=0.6 if lw > 2 else 1)
    for y, c in ((0.95, "C1"), (0.8, "C0")):
        ax[0].axhline(y, color=c, ls=":", lw=1)  # the targets
    ax[0].set_xlabel("step")
    ax[0].set_ylim(-0.05, 1.05)
    ax[0].legend(fontsize=7)
    ax[0].set_title(f"{n_swaps} held-out swaps each way" if n_swaps else "held-out swaps")
    if series["val/swap_pose_dlib"]:
        ax[1].plot(*zip(*series["val/swap_pose_dlib"]), marker="o", color="C4", label="swap A->B (detected pairs)")
    if series["val/swap_pose_dlib/real_b"]:
        ax[1].plot(*zip(*series["val/swap_pose_dlib/real_b"]), ls=":", marker="x", color="C3", label="real photo of B")
    if series["val/swap_pose_dlib"] or series["val/swap_pose_dlib/real_b"]:
        ax[1].legend()
    ax[1].set_xlabel("step")
    ax[1].set_title("68-landmark error (NME) vs source")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "curves.png", dpi=100)
    return out / "curves.png"


def video_temporal(source: str, swapped: str) -> dict[str, float]:
    """:func:`genface.metrics.swap.temporal_consistency` of a genface-swap output video."""
    import numpy as np

    from genface.faces.io import VideoReader
    from genface.metrics.swap import temporal_consistency

    with VideoReader(source) as r:
        x = np.stack(list(r))
    with VideoReader(swapped) as r:
        y = np.stack(list(r))
    n = min(len(x), len(y))
    xt = torch.from_numpy(x[:n]).permute(0, 3, 1, 2).float() / 255
    yt = torch.from_numpy(y[:n]).permute(0, 3, 1, 2).float() / 255
    region = ((xt - yt).abs().amax(1, keepdim=True) > 4 / 255).any(0, keepdim=True).float().expand(n, 1, -1, -1)
    t = temporal_consistency(xt, yt, region)
    return {"video_temporal": t["ratio"], "video_temporal/swap_diff": t["swap_diff"],
            "video_temporal/source_diff": t["source_diff"], "video_temporal/frames": n,
            "video_temporal/region": float(region[0].mean())}


def make_pan_video(photo: str, out: str, frames: int = 30, scale: float = 2.0, fps: int = 15) -> Path:
    """A short test video of one still photo: a slow pan (+-4 % of the width) and zoom (+-6 %).

    The photo is upsampled by ``scale`` first (ORL's 92x112 photos are small for a video);
    borders are reflected. Written with :class:`genface.faces.io.VideoWriter`, so it is marked
    synthetic like every video genface writes (it is made by a program from a still).
    """
    import math

    import cv2
    import numpy as np

    from genface.faces.io import VideoWriter, read_image

    img = read_image(photo)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    h, w = (int(round(img.shape[0] * scale)) // 2 * 2, int(round(img.shape[1] * scale)) // 2 * 2)
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)
    with VideoWriter(out, fps=fps) as vw:
        for t in range(frames):
            a = 2 * math.pi * t / frames
            z = 1 + 0.06 * math.sin(a)
            m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, z)
            m[0, 2] += 0.04 * w * math.sin(a)
            m[1, 2] += 0.02 * h * math.cos(a)
            vw.write(cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return Path(out)


def main(argv=None) -> int:
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from genface.metrics import compute_metrics
    from genface.metrics.swap import swap_metric_names
    from genface.models.faceswap import FaceSwap
    from genface.training.faceswap import FaceSwapModule

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--video-dir", help="aligned crops of consecutive frames of A (genface-extract of a video)")
    p.add_argument("--out", type=Path, default=None, help="folder for metrics.json and curves.png")
    p.add_argument("--swapped-video", nargs=2, metavar=("SOURCE", "SWAPPED"),
                   help="a source video and its genface-swap output: temporal consistency of the whole "
                   "frames inside the swapped region (pixels the swap changed in any frame)")
    p.add_argument("--make-video", nargs=2, metavar=("PHOTO", "OUT"),
                   help="only write a 30-frame pan-and-zoom video of one photo (a held-out photo of A) "
                   "to OUT, for genface-swap and --swapped-video, and stop")
    p.add_argument("--list-held-out", action="store_true",
                   help="also print the files of the held-out faces of A")
    p.add_argument("--earlier-metrics", nargs="+", type=Path, default=[],
                   help="metrics.csv files of the run before it was resumed (Lightning's CSV logger "
                   "starts the file afresh on resume), plotted before RUN_DIR/metrics.csv")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.make_video:
        print(make_pan_video(*args.make_video))
        return 0
    t0 = time.perf_counter()
    cfg = OmegaConf.load(args.run_dir / ".hydra" / "config.yaml")
    if args.video_dir:
        cfg.data.video_dir = args.video_dir
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup()
    net = FaceSwap.from_pretrained(args.run_dir / "pretrained")
    module = FaceSwapModule(net, augment=False)
    data = dm.swap_eval_data()
    if args.list_held_out:
        from genface.data.swap import _folder_and_indices

        base, idx = _folder_and_indices(dm.val_a)
        print("held-out faces of A:", *[base.files[i] for i in idx])
    names = swap_metric_names(data)
    m = compute_metrics(names, swap_fn=module.swap_fn, swap_data=data)
    print(table(m))
    if "swap_temporal" in m:
        print(f"\nvideo of A ({int(m['swap_temporal/frames'])} frames): temporal ratio {m['swap_temporal']:.3f} "
              f"(swap change {m['swap_temporal/swap_diff']:.4f} / source change {m['swap_temporal/source_diff']:.4f})")
    print(f"\n{len(data.faces_a)} held-out faces of A, gallery of {int(m.get('swap_id_dlib/num_gallery', 0))} faces "
          f"of {int(m.get('swap_id_dlib/num_identities', 0))} identities; {time.perf_counter() - t0:.0f} s")
    if args.swapped_video:
        m.update(video_temporal(*args.swapped_video))
        print(f"genface-swap video: temporal ratio {m['video_temporal']:.3f} over {int(m['video_temporal/frames'])} "
              f"frames (swap change {m['video_temporal/swap_diff']:.4f} / source change "
              f"{m['video_temporal/source_diff']:.4f}, swapped region {100 * m['video_temporal/region']:.0f} %)")
    out = args.out or args.run_dir / "swap_eval"
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(m, indent=1))
    curves = plot_curves(args.run_dir, out, args.earlier_metrics, int(m.get("swap_id_dlib/num_swaps", 0)))
    if curves:
        print(f"curves: {curves}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
