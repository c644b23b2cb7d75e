"""Validity suite for feature-space metrics, after Heusel et al. 2017 (arXiv 1706.08500, Fig. 1, A1).

Held-out real images are disturbed at increasing levels (:mod:`genface.metrics.disturb`) and
scored against the reference set with the *registered* metrics, plus sets that show no face
at all. Three checks, on the "badness" of each metric (the distance itself; ``1 - value``
for precision, where higher is better):

1. **monotone**: for every disturbance, the clean held-out set (level 0) < level 1 < ... ;
   contamination ends with the pure non-face set (fraction 1);
2. **floor**: two disjoint clean held-out sets score below every disturbed set, and below
   ``floor_share`` of the best-scoring non-face set;
3. **faces beat no faces**: every set whose images all still show a face (every level of
   noise, blur, rectangles, swirl, salt-and-pepper) scores better than every non-face set.

:func:`build_sets` makes the image sets, :func:`evaluate` scores them, :func:`check` judges
them. ``experiments/metric_validity.py`` runs it at full size and draws the figure;
``tests/metrics/test_metric_validity.py`` runs it small.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from genface.metrics.disturb import DISTURBANCES, NON_FACE_KINDS, contaminate, non_faces

#: Disturbances whose every level still shows a face in every image (check 3).
FACE_SHOWING = ("gaussian_noise", "gaussian_blur", "black_rectangles", "swirl", "salt_and_pepper")
#: Metric result keys -> True when higher is better (precision); others are distances.
HIGHER_IS_BETTER_SUFFIX = ("/precision", "/face_rate")


@dataclasses.dataclass
class ImageSet:
    """One scored set: ``kind`` is ``"real"``, a disturbance name or ``"nonface_<kind>"``."""

    name: str
    kind: str
    level: float
    images: torch.Tensor  # (N, 3, H, W) float in [-1, 1]


def build_sets(held_out: torch.Tensor, second_real: torch.Tensor, num: int, seed: int = 0,
               levels: dict[str, tuple[float, ...]] | None = None) -> list[ImageSet]:
    """The suite's image sets, each of ``num`` images.

    Args:
        held_out: real images disjoint from the reference, ``(>= num, 3, H, W)`` in ``[-1, 1]``;
            every disturbance is applied to its first ``num``.
        second_real: another ``num`` real images, disjoint from both (the second floor set).
            Contaminated sets take their non-face images from the pure non-face sets (same
            positions), so a per-image feature cache can reuse them.
        num: images per set.
        seed: seed of every random draw (each set gets its own stream).
        levels: disturbance name -> levels; ``None`` = those of :data:`DISTURBANCES`.
    """
    x = held_out[:num]
    res = x.shape[-1]
    sets = [ImageSet("real", "real", 0.0, x), ImageSet("real_b", "real", 0.0, second_real[:num])]
    pure = {}
    for i, kind in enumerate(NON_FACE_KINDS):
        g = torch.Generator().manual_seed(seed * 1000 + 900 + i)
        pure[kind] = non_faces(kind, num, res, g, x)
    for i, (name, (fn, default_levels)) in enumerate(DISTURBANCES.items()):
        for j, lvl in enumerate((levels or {}).get(name, default_levels)):
            g = torch.Generator().manual_seed(seed * 1000 + 10 * i + j)
            if name.startswith("contaminate_"):
                kind = name.removeprefix("contaminate_")
                images = contaminate(x, lvl, g, kind, pool=pure[kind])
            else:
                images = fn(x, lvl, g)
            sets.append(ImageSet(f"{name}@{lvl:g}", name, float(lvl), images))
    sets += [ImageSet(f"nonface_{k}", f"nonface_{k}", 1.0, v) for k, v in pure.items()]
    return sets


def _as_generator(images: torch.Tensor, batch_size: int):
    def fn(n: int, seed: int) -> torch.Tensor:
        return images[seed * batch_size: seed * batch_size + n]
    return fn


def evaluate(names: list[str], sets: list[ImageSet], reference: Any, *, cache_dir=None,
             reference_key: str | None = None, batch_size: int = 100,
             metric_opts: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, float]]:
    """Score every set with the registered metrics ``names`` -> ``{set name: results}``.

    Each set is passed as the generator (batch ``b`` = images ``b*batch_size`` onwards), so
    the metric's own code path is measured. Metrics named for more images than a set has
    (``fsd_synth1k`` on 200 images) are run by their registered function with the set's size.
    ``metric_opts`` maps a metric name to extra options (e.g. ``{"kid_synth1k": {"num_subsets": 10}}``).
    """
    from genface.metrics.registry import EvalContext, get_metric

    out: dict[str, dict[str, float]] = {}
    for s in sets:
        ctx = EvalContext(generator_fn=_as_generator(s.images, batch_size), reference=reference,
                          batch_size=batch_size, seed=0, cache_dir=cache_dir, reference_key=reference_key)
        res: dict[str, float] = {}
        for name in names:
            fn = get_metric(name).fn
            kw = dict(getattr(fn, "keywords", {}))
            kw["num_gen"] = min(kw.get("num_gen", len(s.images)), len(s.images))
            res.update({k: float(v) for k, v in fn.func(ctx, **kw, **(metric_opts or {}).get(name, {})).items()})
        out[s.name] = res
    return out


def badness(key: str, value: float) -> float:
    """The value turned into "lower is better"."""
    return 1.0 - value if key.endswith(HIGHER_IS_BETTER_SUFFIX) else value


@dataclasses.dataclass
class Check:
    """One check's outcome; ``detail`` says what was compared."""

    metric: str
    check: str
    passed: bool
    detail: str


def check(results: dict[str, dict[str, float]], sets: list[ImageSet], key: str,
          floor_share: float = 0.1) -> list[Check]:
    """The three checks of the module docstring for result ``key`` (e.g. ``"fsd_synth1k"``)."""
    b = {name: badness(key, r[key]) for name, r in results.items()}
    kinds: dict[str, list[ImageSet]] = {}
    for s in sets:
        kinds.setdefault(s.kind, []).append(s)
    nonface = [s.name for s in sets if s.kind.startswith("nonface_")]
    out = []
    floor = max(b["real"], b["real_b"])
    for kind, members in kinds.items():
        if kind == "real" or kind.startswith("nonface_"):
            continue
        chain = ["real"] + [s.name for s in sorted(members, key=lambda s: s.level)]
        if kind.startswith("contaminate_"):
            chain.append(f"nonface_{kind.removeprefix('contaminate_')}")
        vals = [b[n] for n in chain]
        ok = all(v1 < v2 for v1, v2 in zip(vals, vals[1:]))
        out.append(Check(key, f"monotone {kind}", ok, " < ".join(f"{v:.4g}" for v in vals)))
    mildest = min(b[s.name] for k, m in kinds.items() if k != "real" and not k.startswith("nonface_")
                  for s in m)
    best_none = min(b[n] for n in nonface)
    out.append(Check(key, "floor", floor < mildest and floor <= floor_share * best_none,
                     f"real {b['real']:.4g}, real_b {b['real_b']:.4g}; mildest disturbed {mildest:.4g}; "
                     f"{floor_share:g} x best non-face = {floor_share * best_none:.4g}"))
    face = [s.name for s in sets if s.kind in FACE_SHOWING]
    worst_face = max(face, key=lambda n: b[n])
    best_nf = min(nonface, key=lambda n: b[n])
    out.append(Check(key, "faces beat no faces", b[worst_face] < b[best_nf],
                     f"worst face-showing {worst_face} {b[worst_face]:.4g} vs best non-face "
                     f"{best_nf} {b[best_nf]:.4g}"))
    return out


def anchor_score(name: str, reference: Any, held_out: torch.Tensor, disturbance: str = "gaussian_blur",
                 level: float = 2.0, *, cache_dir=None, reference_key: str | None = None,
                 batch_size: int = 100) -> dict[str, float]:
    """Score of held-out real images under one disturbance: a bar for generators to clear.

    The default, blur of sigma 2 px at 32 px, still shows clear faces (docs/metrics.md,
    "The bar a generator must clear"); a generator scoring better than it is at least that
    face-like to metric ``name``.

    Args:
        name: registered metric, e.g. ``"fsd_synth1k"``.
        reference: the reference set the generators are scored against.
        held_out: real images ``(N, 3, H, W)`` in ``[-1, 1]`` disjoint from ``reference``.
        disturbance: a key of :data:`genface.metrics.disturb.DISTURBANCES`.
        level: its level.
        cache_dir, reference_key, batch_size: as :func:`evaluate`.
    """
    fn, _ = DISTURBANCES[disturbance]
    s = ImageSet(f"{disturbance}@{level:g}", disturbance, level,
                 fn(held_out, level, torch.Generator().manual_seed(0)))
    return evaluate([name], [s], reference, cache_dir=cache_dir, reference_key=reference_key,
                    batch_size=batch_size)[s.name]
