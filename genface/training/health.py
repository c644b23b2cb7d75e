"""Is a trained generator healthy? A simple, documented detector of collapse and divergence.

A comparison must not show a collapsed or diverged model silently as a number (a metric of
identical or saturated samples can still look plausible). :func:`assess_health` reads what a
run leaves behind and returns a :class:`Health` verdict with the reasons:

``"diverged"`` (any of)
    * a final loss or a metric is NaN/Inf;
    * the samples hold NaN/Inf, or are saturated: more than ``SATURATED_SHARE`` of their
      pixels at ±1 (within 0.02), as a generator whose tanh output blew up.

``"collapsed"`` (any of)
    * sample diversity far below the data's: the mean MS-SSIM between random pairs of samples
      (``msssim_pairs*``, 1 = identical pairs) beyond half-way from the data's own value to 1,
      ``m > ref + (1 - ref) / 2`` (ProGAN §5 reads MS-SSIM pairs the same way: higher = less
      diverse; our real SyntheticFaces score about 0.19, so the line is about 0.6);
    * the samples' spread across samples (per-pixel std over the batch, averaged over pixels)
      below ``MIN_SPREAD_RATIO`` (0.25) of the reference images' spread: every sample is
      nearly the same image, whatever its content;
    * flat samples: per-image pixel std below ``MIN_CONTRAST_RATIO`` (0.25) of the
      reference's, averaged over images (a grey or single-colour output).

``"suspect"`` (the run finished, but look at its grid before trusting its numbers)
    * the discriminator wins outright: a non-saturating / logistic D loss below
      ``D_WINS_LOSS`` (0.1, both real and fake classified with about 95 % confidence) while
      the G loss is above ``G_LOSING_LOSS`` (4, D(G(z)) < 2 %). Only checked when both
      ``d_loss`` and ``g_loss`` are given and ``gan_loss`` is ``"non_saturating"`` (the
      WGAN critic's losses are unbounded and say nothing of this kind).

``"ok"`` otherwise. The detector cannot tell a good model from a mediocre one (that is the
metrics' job); it flags results that are not results.

``genface-compare`` (and its report) can call it on each result row::

    health = assess_health(row["final_losses"], row["metrics"], samples=images, reference=real)
    row["health"] = health.to_dict()      # {"status": "collapsed", "reasons": [...]}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Health", "assess_health", "sample_stats", "STATUSES"]

#: Verdicts, from best to worst.
STATUSES = ("ok", "suspect", "collapsed", "diverged")

SATURATED_SHARE = 0.5  # share of pixels at +-1 above which samples count as saturated
MIN_SPREAD_RATIO = 0.25  # samples' spread across samples / the reference's, below = collapsed
MIN_CONTRAST_RATIO = 0.25  # samples' per-image pixel std / the reference's, below = flat (collapsed)
D_WINS_LOSS = 0.1  # non-saturating D loss below this ...
G_LOSING_LOSS = 4.0  # ... with a G loss above this = the discriminator wins outright (suspect)


@dataclass
class Health:
    """A verdict on one trained model.

    Args:
        status: one of :data:`STATUSES`.
        reasons: one line per finding (empty when ``"ok"``).
        stats: the numbers the verdict used (sample spread, contrast, ...), for the report.
    """

    status: str = "ok"
    reasons: list[str] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def flag(self, status: str, reason: str) -> None:
        """Record ``reason`` and raise the status to ``status`` if that is worse."""
        if STATUSES.index(status) > STATUSES.index(self.status):
            self.status = status
        self.reasons.append(reason)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": list(self.reasons), "stats": dict(self.stats)}

    def __str__(self) -> str:
        return self.status if not self.reasons else f"{self.status}: {'; '.join(self.reasons)}"


def sample_stats(images: torch.Tensor) -> dict[str, float]:
    """Statistics of images ``(N, C, H, W)`` in [-1, 1] used by :func:`assess_health`.

    ``spread``: per-pixel std across the N images, averaged over pixels and channels;
    ``contrast``: each image's pixel std, averaged over images; ``saturated``: share of pixels
    within 0.02 of ±1; ``finite``: 1 if every value is finite.
    """
    if images.ndim != 4 or images.shape[0] < 2:
        raise ValueError(f"sample_stats needs (N >= 2, C, H, W) images, got {tuple(images.shape)}")
    x = images.detach().float().cpu()
    finite = bool(torch.isfinite(x).all())
    if not finite:
        return {"finite": 0.0, "spread": float("nan"), "contrast": float("nan"), "saturated": float("nan")}
    return {
        "finite": 1.0,
        "spread": float(x.std(dim=0).mean()),
        "contrast": float(x.flatten(1).std(dim=1).mean()),
        "saturated": float((x.abs() > 0.98).float().mean()),
    }


def _msssim_pairs(metrics: Mapping[str, float]) -> tuple[str, float, float] | None:
    """``(name, value, reference)`` of the first ``msssim_pairs*`` metric with its reference."""
    for k, v in metrics.items():
        if k.startswith("msssim_pairs") and "/" not in k:
            ref = metrics.get(f"{k}/reference")
            if ref is not None:
                return k, float(v), float(ref)
    return None


def assess_health(final_losses: Mapping[str, float] | None = None, metrics: Mapping[str, float] | None = None,
                  samples: torch.Tensor | None = None, reference: torch.Tensor | None = None,
                  gan_loss: str | None = "non_saturating") -> Health:
    """Classify a trained model as ``ok``, ``suspect``, ``collapsed`` or ``diverged`` (module docstring).

    Every input is optional: the checks that lack their input are skipped.

    Args:
        final_losses: the run's final losses ``{name: value}`` (genface-compare's
            ``final_losses``: ``d_loss``, ``g_loss``, ``loss``, ...).
        metrics: its metrics (``msssim_pairs1k`` and ``msssim_pairs1k/reference`` are used;
            any non-finite headline value counts as divergence).
        samples: generated images ``(N, C, H, W)`` in [-1, 1] (N >= 2; 64 is plenty).
        reference: real images of the same size and range, for the spread and contrast ratios.
        gan_loss: the GAN loss the model trained with; the D-wins check runs only for
            ``"non_saturating"``; None = do not run it.
    """
    health = Health()
    losses = dict(final_losses or {})
    metrics = dict(metrics or {})
    bad = sorted(k for k, v in {**losses, **{m: v for m, v in metrics.items() if "/" not in m}}.items()
                 if v is None or not math.isfinite(float(v)))
    if bad:
        health.flag("diverged", f"non-finite {', '.join(bad)}")

    if samples is not None:
        s = sample_stats(samples)
        health.stats.update({f"sample_{k}": v for k, v in s.items()})
        if not s["finite"]:
            health.flag("diverged", "samples hold NaN/Inf")
        else:
            if s["saturated"] > SATURATED_SHARE:
                health.flag("diverged", f"samples saturated ({s['saturated']:.0%} of pixels at +-1)")
            if reference is not None:
                r = sample_stats(reference)
                health.stats.update({f"reference_{k}": v for k, v in r.items()})
                if s["spread"] < MIN_SPREAD_RATIO * r["spread"]:
                    health.flag("collapsed", f"samples nearly identical (spread {s['spread']:.3f} vs "
                                             f"{r['spread']:.3f} in the data)")
                if s["contrast"] < MIN_CONTRAST_RATIO * r["contrast"]:
                    health.flag("collapsed", f"samples flat (pixel std {s['contrast']:.3f} vs "
                                             f"{r['contrast']:.3f} in the data)")

    pairs = _msssim_pairs(metrics)
    if pairs is not None:
        name, m, ref = pairs
        line = ref + (1 - ref) / 2
        health.stats["msssim_collapse_line"] = line
        if math.isfinite(m) and m > line:
            health.flag("collapsed", f"low diversity ({name} {m:.3f} > {line:.3f}, data {ref:.3f})")

    if gan_loss == "non_saturating" and "d_loss" in losses and "g_loss" in losses:
        d, g = float(losses["d_loss"]), float(losses["g_loss"])
        if math.isfinite(d) and math.isfinite(g) and d < D_WINS_LOSS and g > G_LOSING_LOSS:
            health.flag("suspect", f"discriminator wins (d_loss {d:.3g}, g_loss {g:.3g})")
    return health
