"""Metric validity suite (Heusel et al. 2017, arXiv 1706.08500, Fig. 1 and appendix A1).

Disturbs held-out real faces at four levels of Gaussian noise, Gaussian blur, black
rectangles, swirl, salt-and-pepper and contamination by non-face images, adds pure non-face
sets, and scores every set with every registered feature-space metric that can run here;
then checks monotonicity, the floor and "faces beat no faces" (:mod:`genface.metrics.validity`).
Writes the numbers as JSON and draws the curves.

* ``synth``: SyntheticFaces (seed 0; reference = images 0-4999, held-out = 5000-5999,
  second real set = 6000-6999) at 32 and 64 px, metrics ``fsd_synth1k``, ``kid_synth1k``,
  ``pr_synth1k3``.
* ``dlib``: UTKFace adults from ``$GENFACE_DATA/utkface_adults`` at 64 px (skipped when
  absent or when dlib is not installed), metrics ``fd_dlib1k_full``, ``kid_dlib1k_full``,
  ``pr_dlib1k3_full``. dlib runs at about 1 s per image on a loaded CPU, so set sizes are
  small (``--dlib-num``).
* Inception metrics (``fid*``, ``kid*_full``, ``pr*k3_full``) run only when the Inception
  weights file is found (see docs/metrics.md); otherwise they are listed as skipped.

Usage::

    python experiments/metric_validity.py --out docs/img/metric_validity \\
        --suites synth32 synth64 dlib64
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from genface.metrics import validity as V

SYNTH_METRICS = ["fsd_synth1k", "kid_synth1k", "pr_synth1k3"]
DLIB_METRICS = ["fd_dlib1k_full", "kid_dlib1k_full", "pr_dlib1k3_full"]
INCEPTION_METRICS = ["fid1k_full", "kid1k_full", "pr1k3_full"]
#: KID subsets in the suite (the registered default is 100, NVlabs'; 10 keeps the CPU run short).
KID_SUBSETS = 10
#: result key checked per metric (the headline; precision for PR).
CHECK_KEYS = {"fsd_synth1k": "fsd_synth1k", "kid_synth1k": "kid_synth1k", "pr_synth1k3": "pr_synth1k3/precision",
              "fd_dlib1k_full": "fd_dlib1k_full", "kid_dlib1k_full": "kid_dlib1k_full",
              "pr_dlib1k3_full": "pr_dlib1k3_full/precision", "fid1k_full": "fid1k_full",
              "kid1k_full": "kid1k_full", "pr1k3_full": "pr1k3_full/precision"}


def _inception_available() -> str | None:
    from genface.metrics import get_metric

    return get_metric("fid1k_full").unavailable_reason()


def synth_suite(res: int, num: int, cache: str | None) -> dict:
    from genface.data.synthetic import SyntheticFaces
    from genface.metrics import synth_net

    ds = SyntheticFaces(num_images=10000, resolution=res, seed=0)
    x = ds.images.float() / 127.5 - 1
    ref, held, real_b = x[:5000], x[5000:5000 + num], x[6000:6000 + num]
    t0, c0 = time.perf_counter(), time.process_time()
    had = synth_net.synth_net_path(res, cache).is_file()
    synth_net.get_synth_net(res, cache)
    train = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "cached": had}
    names = list(SYNTH_METRICS)
    if _inception_available() is None:
        names += INCEPTION_METRICS
    sets = V.build_sets(held, real_b, num)
    results = V.evaluate(names, sets, ref, cache_dir=cache, reference_key=f"synthfaces-s0-r{res}-i0-5000",
                         metric_opts={"kid_synth1k": {"num_subsets": KID_SUBSETS}})
    return {"dataset": f"SyntheticFaces seed 0, {res} px, reference 5000, sets of {num}",
            "metrics": names, "synth_net_training": train, "sets": sets, "results": results}


class _CachedEmbedder:
    """Wraps a DlibFaceEmbedder with a per-image cache (contaminated sets reuse pure-set images)."""

    def __init__(self, inner):
        self.inner, self.cache_name, self.memo = inner, inner.cache_name, {}

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        rows = []
        for a in images.permute(0, 2, 3, 1).cpu().numpy():
            k = hashlib.sha1(a.tobytes()).hexdigest()
            if k not in self.memo:
                self.memo[k] = self.inner.embed_one(a)
            rows.append(self.memo[k])
        return {"emb": torch.from_numpy(np.stack(rows))}


def dlib_suite(num: int, num_ref: int, cache: str | None) -> dict | str:
    from genface.metrics import face_embed

    why = face_embed.dlib_unavailable_reason()
    root = os.environ.get("GENFACE_DATA")
    if why:
        return f"skipped: {why}"
    if not root or not (Path(root) / "utkface_adults").is_dir():
        return "skipped: $GENFACE_DATA/utkface_adults not found"
    from genface.data.folder import FolderFaces

    ds = FolderFaces(Path(root) / "utkface_adults", resolution=64, progress=False)
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))
    x = ds.images[perm].float() / 127.5 - 1
    ref, held, real_b = x[:num_ref], x[num_ref:num_ref + num], x[num_ref + num:num_ref + 2 * num]
    face_embed._EMBEDDERS["hog"] = _CachedEmbedder(face_embed._embedder("hog"))
    sets = V.build_sets(held, real_b, num)
    results = V.evaluate(DLIB_METRICS, sets, ref, cache_dir=cache,
                         reference_key=f"utkface-adults-r64-perm0-{num_ref}")
    return {"dataset": f"UTKFace adults, 64 px, reference {num_ref} random faces, sets of {num}",
            "metrics": DLIB_METRICS, "sets": sets, "results": results}


def judge(suite: dict) -> list[dict]:
    out = []
    for m in suite["metrics"]:
        out += [vars(c) for c in V.check(suite["results"], suite["sets"], CHECK_KEYS[m])]
    return out


def plot(suites: dict, path: Path) -> None:
    """Curves per suite and metric (rows) and disturbance (columns); ``suites`` as in the JSON."""
    from genface.utils import pyplot

    plt = pyplot("the figures of this script")

    rows = [(name, m) for name, s in suites.items() if isinstance(s, dict) for m in s["metrics"]]
    kinds = next(s["kinds"] for s in suites.values() if isinstance(s, dict))
    fig, axes = plt.subplots(len(rows), len(kinds), figsize=(2.3 * len(kinds), 1.9 * len(rows)), squeeze=False)
    for r, (sname, m) in enumerate(rows):
        s, key = suites[sname], CHECK_KEYS[m]
        res = s["results"]
        nf = {k: V.badness(key, v[key]) for k, v in res.items() if k.startswith("nonface_")}
        best = min(nf, key=nf.get)
        for c, kind in enumerate(kinds):
            ax = axes[r][c]
            members = sorted([st for st in s["sets"] if st["kind"] == kind], key=lambda st: st["level"])
            lv = [0.0] + [st["level"] for st in members]
            vals = [res["real"][key]] + [res[st["name"]][key] for st in members]
            ax.plot(lv, vals, "o-", color="C0", ms=3)
            if kind.startswith("contaminate_"):  # fraction 1 = the pure non-face set
                pure = f"nonface_{kind.removeprefix('contaminate_')}"
                ax.plot([lv[-1], 1.0], [vals[-1], res[pure][key]], "o--", color="C0", ms=3)
            ax.axhline(res[best][key], color="C3", ls="--", lw=1)
            ax.axhline(res["real_b"][key], color="0.5", ls=":", lw=1)
            if r == 0:
                ax.set_title(kind.replace("contaminate_", "contam. "), fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{sname}\n{key}", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.suptitle("Metric validity: disturbance level (x) vs metric (y); red dashed = best pure non-face set, "
                 "grey dotted = second real set", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def table(suites: dict) -> str:
    lines = []
    for sname, s in suites.items():
        if not isinstance(s, dict):
            lines.append(f"**{sname}**: {s}\n")
            continue
        keys = [CHECK_KEYS[m] for m in s["metrics"]]
        extra = [k for k in ("fsd_synth1k/face_rate", "fd_dlib1k_full/gen_detected") if k in s["results"]["real"]]
        lines.append(f"**{sname}** ({s['dataset']})\n")
        lines.append("| set | " + " | ".join(keys + extra) + " |")
        lines.append("|---|" + "---|" * (len(keys) + len(extra)))
        for name, r in s["results"].items():
            lines.append(f"| {name} | " + " | ".join(f"{r[k]:.4g}" for k in keys + extra) + " |")
        lines.append("")
        fails = [c for c in s["checks"] if not c["passed"]]
        lines.append(f"Checks: {len(s['checks']) - len(fails)}/{len(s['checks'])} pass."
                     + ("" if not fails else " Failing: " + "; ".join(f"`{c['metric']}` {c['check']} ({c['detail']})"
                                                                     for c in fails)))
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="docs/img/metric_validity", help="output path stem (.json, .png, .txt table)")
    p.add_argument("--suites", nargs="*", default=["synth32", "synth64", "dlib64"],
                   help="synth32, synth64 (SyntheticFaces) and/or dlib64 (UTKFace)")
    p.add_argument("--num", type=int, default=1000, help="images per set (synth suites)")
    p.add_argument("--dlib-num", type=int, default=50, help="images per set (dlib suite)")
    p.add_argument("--dlib-ref", type=int, default=150, help="reference faces (dlib suite)")
    p.add_argument("--cache", default=None, help="metric cache dir (default $GENFACE_CACHE/metrics)")
    p.add_argument("--replot", nargs="*", default=None, metavar="JSON",
                   help="only redraw the figure and table at --out from these JSON files of earlier runs")
    a = p.parse_args()
    out = Path(a.out)
    if a.replot:
        merged = {}
        for f in a.replot:
            merged.update({k: v for k, v in json.loads(Path(f).read_text()).items() if k != "inception"})
        plot(merged, out.with_suffix(".png"))
        out.with_suffix(".txt").write_text(table(merged))
        return
    torch.set_num_threads(1)
    suites: dict = {}
    for name in a.suites:
        t0 = time.perf_counter()
        if name.startswith("synth"):
            s = synth_suite(int(name.removeprefix("synth")), a.num, a.cache)
        elif name == "dlib64":
            s = dlib_suite(a.dlib_num, a.dlib_ref, a.cache)
        else:
            raise SystemExit(f"unknown suite {name!r}")
        if isinstance(s, dict):
            s["kinds"] = list(dict.fromkeys(st.kind for st in s["sets"] if st.kind != "real"
                                            and not st.kind.startswith("nonface_")))
            s["checks"] = judge(s)
            s["wall_s"] = time.perf_counter() - t0
            print(f"{name}: {sum(c['passed'] for c in s['checks'])}/{len(s['checks'])} checks pass "
                  f"({s['wall_s']:.0f} s)", flush=True)
        else:
            print(f"{name}: {s}", flush=True)
        suites[name] = s
    why = _inception_available()
    out.parent.mkdir(parents=True, exist_ok=True)
    dump = {n: (s if not isinstance(s, dict) else {k: v for k, v in s.items() if k != "sets"}
                | {"sets": [{"name": st.name, "kind": st.kind, "level": st.level} for st in s["sets"]]})
            for n, s in suites.items()}
    dump["inception"] = "ran" if why is None else f"skipped: {why}"
    out.with_suffix(".json").write_text(json.dumps(dump, indent=1))
    dump.pop("inception")
    out.with_suffix(".txt").write_text(table(dump))
    if any(isinstance(s, dict) for s in dump.values()):
        plot(dump, out.with_suffix(".png"))
    print(table(dump))


if __name__ == "__main__":
    main()
