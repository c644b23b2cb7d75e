"""Reports of ``genface-compare``: tables, seed statistics, curves and the study's answers.

Everything here works from the result rows that :mod:`genface.cli.compare` writes to
``results.json`` (one row per model and seed), so a report can be re-rendered, and the study
questions answered, from that file alone::

    python -m genface.report logs/compare/runs/<run>/results.json      # prints the answers
    python -m genface.report results.json --write                       # also rewrites report.md

Seed statistics (issue 9, item 4). For every model and metric over its seeds: the mean, the
sample standard deviation (``ddof=1``) and a 95 % Student-t interval
``mean ± t_{0.975, n-1} · std / sqrt(n)``. Two models' difference is called *larger than the
spread between seeds* when Welch's unequal-variance t-test (Welch 1947; ``scipy.stats.ttest_ind``
with ``equal_var=False``) gives a two-sided p < 0.05. With 3 seeds this test has little power: a
difference it does not flag is not shown to be absent. Runs that collapsed, diverged or failed
(:func:`run_status`) are left out of the statistics and counted in the status column instead.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genface.training.eval_callback import read_curves

#: statuses of a run, best first (``suspect``, ``collapsed``: :mod:`genface.training.health`)
STATUSES = ("ok", "suspect", "collapsed", "diverged", "failed")
#: statuses whose runs enter the seed statistics (a suspect run finished; its status column says to look at it)
COUNTED = ("ok", "suspect")
#: logged train/* values that are not losses (kept out of the loss columns and curves)
NOT_LOSSES = ("kl_weight", "skipped_steps", "d_real", "d_fake", "alpha", "stage", "pl_mean")
#: significance level of the pairwise Welch tests and confidence of the intervals (1 - ALPHA)
ALPHA = 0.05


# ---------------------------------------------------------------------------- run files
def run_dir(out: str | Path, model: str, seed: int) -> Path:
    """Folder of one (model, seed) run inside a comparison's output folder."""
    return Path(out) / "runs" / f"{model}_s{seed}"


def is_loss(key: str) -> bool:
    """Whether a ``metrics.csv`` column is a training loss term (``train/*`` minus counters and rates)."""
    name = key.removeprefix("train/")
    return key.startswith("train/") and name not in NOT_LOSSES and "lr" not in name.split("_")


def _csv_rows(metrics_csv: Path) -> list[dict[str, str]]:
    if not metrics_csv.is_file():
        return []
    with open(metrics_csv) as f:
        return list(csv.DictReader(f))


def final_losses(metrics_csv: str | Path, tail: float = 0.1) -> dict[str, float]:
    """Mean of each ``train/*`` loss term over the last ``tail`` fraction of its logged values."""
    rows = _csv_rows(Path(metrics_csv))
    out: dict[str, float] = {}
    for k in [k for k in (rows[0].keys() if rows else []) if is_loss(k)]:
        vals = [float(r[k]) for r in rows if r.get(k) not in (None, "")]
        if vals:
            n = max(1, int(len(vals) * tail))
            out[k.removeprefix("train/")] = sum(vals[-n:]) / n
    return out


def loss_history(metrics_csv: str | Path) -> dict[str, tuple[list[int], list[float]]]:
    """``train/*`` loss columns of a CSVLogger file as (steps, values)."""
    hist: dict[str, tuple[list[int], list[float]]] = {}
    for r in _csv_rows(Path(metrics_csv)):
        for k, v in r.items():
            if is_loss(k) and v not in (None, ""):
                steps, vals = hist.setdefault(k.removeprefix("train/"), ([], []))
                steps.append(int(float(r.get("step") or len(steps))))
                vals.append(float(v))
    return hist


# ---------------------------------------------------------------------------- metrics
def metric_direction(key: str) -> int:
    """-1 when lower is better, +1 when higher is better, 0 when neither (e.g. diversity scores).

    Decided from the metric's name: distances and errors (FSD, FID, KID, SWD, PPL, FD, MAE,
    MSE, LPIPS) are lower-better; PSNR, SSIM, IS, precision, recall, identity similarity and
    retrieval accuracy, face and detection rates are higher-better; MS-SSIM between random pairs measures diversity
    and has no better direction.
    """
    base, _, part = key.partition("/")
    name = (part or base).lower()
    whole = key.lower()
    if whole.startswith("msssim_pairs"):
        return 0
    if any(t in name for t in ("mae", "mse", "lpips", "error", "dist")) or name.startswith(
            ("fsd", "fid", "kid", "swd", "ppl", "fd_")):
        return -1
    if any(t in name for t in ("psnr", "ssim", "precision", "recall", "acc", "top1", "cos", "sim",
                               "rate", "detected")) or name.startswith(
            ("is", "pr")):
        return 1
    return 0


def headline_keys(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Metric keys for the summary: each metric's headline value, or its parts when it has none
    (reconstruction: mae, psnr, ssim); counts and timings stay in the details table."""
    keys = {k for r in rows for k in r.get("metrics", {})}
    heads = {k for k in keys if "/" not in k}
    parts = {k for k in keys if "/" in k and k.split("/")[0] not in heads and not k.split("/")[1].startswith("num_")}
    return sorted(heads | parts)


def headline_metric(rows: Sequence[dict[str, Any]], metrics: Sequence[str] = ()) -> str | None:
    """The comparison's headline generator metric: the first of ``metrics`` (in the order the
    config lists them) that a row reports as a plain value; else the first plain key."""
    keys = {k for r in rows for k in r.get("metrics", {})}
    for name in metrics:
        if name in keys:
            return name
    plain = sorted(k for k in keys if "/" not in k)
    return plain[0] if plain else None


def _primary_key(name: str, keys: set[str]) -> str | None:
    """The key that stands for metric ``name`` in a short table: itself, or its ``mae`` part."""
    if name in keys:
        return name
    for part in ("mae", "error"):
        if f"{name}/{part}" in keys:
            return f"{name}/{part}"
    return None


def swap_keys(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Swap scores present in the rows (registered swap metrics of :mod:`genface.metrics.swap` and
    FaceSwap's ``swap_gt``): plain keys, or the parts of a metric that has no plain value."""
    keys = {k for r in rows for k in r.get("metrics", {}) if k.split("/")[0].startswith("swap") or "swap" in k.split("/")[0]}
    heads = {k for k in keys if "/" not in k}
    parts = {k for k in keys if "/" in k and k.split("/")[0] not in heads and not k.split("/")[-1].startswith("num_")}
    return sorted(heads | parts)


# ---------------------------------------------------------------------------- status
def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def run_status(row: dict[str, Any]) -> str:
    """``ok``, ``suspect``, ``collapsed``, ``diverged`` or ``failed`` for one result row.

    ``failed``: training or evaluation raised (the row has ``error``). ``diverged``: a final
    loss or a metric is not finite. Otherwise the status genface-compare stored from the
    training-health check (``row["status"]``: :func:`genface.training.health.assess_health`,
    which also finds collapse from the samples and their diversity), or ``ok``.
    """
    if row.get("error"):  # raised: failed, or diverged when training stopped on non-finite losses
        return "diverged" if row.get("status") == "diverged" else "failed"
    if any(not _finite(v) for v in row.get("final_losses", {}).values()):
        return "diverged"
    if any(not _finite(v) for v in row.get("metrics", {}).values()):
        return "diverged"
    status = row.get("status", "ok")
    return status if status in STATUSES else "ok"


def status_summary(rows: Sequence[dict[str, Any]]) -> str:
    """One model's status over its seeds: ``ok``, or e.g. ``ok 2, collapsed 1``."""
    counts = Counter(run_status(r) for r in rows)
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{s} {counts[s]}" for s in STATUSES if counts[s])


# ---------------------------------------------------------------------------- seed statistics
@dataclass(frozen=True)
class SeedStat:
    """A metric over seeds.

    Args:
        mean: arithmetic mean.
        std: sample standard deviation (``ddof=1``); NaN for one seed.
        n: number of seeds.
        lo: lower end of the 95 % Student-t interval of the mean (NaN for one seed).
        hi: upper end of that interval.
        values: the per-seed values.
    """

    mean: float
    std: float
    n: int
    lo: float
    hi: float
    values: tuple[float, ...]

    def text(self, digits: int = 4, interval: bool = False) -> str:
        """``mean ± std`` (and ``[lo, hi]``) for tables; just the mean for one seed."""
        m = _fmt(self.mean, digits)
        if self.n < 2 or self.std == 0:
            return m
        s = f"{m} ± {_sig2(self.std)}"
        return f"{s} [{_fmt(self.lo, digits)}, {_fmt(self.hi, digits)}]" if interval else s


def seed_stat(values: Iterable[float], confidence: float = 1 - ALPHA) -> SeedStat:
    """Mean, sample std and Student-t interval of per-seed values (NaNs dropped)."""
    from scipy import stats

    vals = tuple(float(v) for v in values if _finite(v))
    n = len(vals)
    if n == 0:
        nan = float("nan")
        return SeedStat(nan, nan, 0, nan, nan, vals)
    mean = sum(vals) / n
    if n < 2:
        return SeedStat(mean, float("nan"), n, float("nan"), float("nan"), vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return SeedStat(mean, std, n, mean - half, mean + half, vals)


def by_model(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by model, in the order models first appear."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["model"], []).append(r)
    return groups


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, SeedStat]]:
    """``{model: {metric key: SeedStat}}`` over the seeds whose status is in :data:`COUNTED`;
    besides the metrics, ``images_per_s``, ``images`` (trained on) and ``train_time_s`` over
    every run that did not fail (they measure cost, not quality)."""
    out: dict[str, dict[str, SeedStat]] = {}
    for model, group in by_model(rows).items():
        ok = [r for r in group if run_status(r) in COUNTED]
        keys = sorted({k for r in ok for k in r.get("metrics", {})})
        stats_ = {k: seed_stat(r["metrics"].get(k, float("nan")) for r in ok) for k in keys}
        finished = [r for r in group if run_status(r) != "failed"]  # cost, not quality: every run that trained
        for k in ("images_per_s", "images", "train_time_s"):
            stats_[k] = seed_stat(r.get(k, float("nan")) for r in finished)
        out[model] = stats_
    return out


@dataclass(frozen=True)
class Difference:
    """Two models compared on one metric.

    Args:
        a: first model.
        b: second model.
        metric: the metric key.
        diff: mean of ``a`` minus mean of ``b``.
        p: two-sided p of Welch's t-test; NaN when either side has fewer than 2 seeds.
        significant: ``p < ALPHA``.
        overlap: whether the two 95 % t-intervals overlap (None without intervals).
        better: which model is better by the mean (None when the metric has no direction or they tie).
    """

    a: str
    b: str
    metric: str
    diff: float
    p: float
    significant: bool
    overlap: bool | None
    better: str | None


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p of Welch's unequal-variance t-test; NaN with fewer than 2 values a side.
    Two constant samples with different means give p = 0 (the difference exceeds a zero spread)."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return float("nan")
    if max(a) == min(a) and max(b) == min(b):
        return 1.0 if a[0] == b[0] else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def compare_pair(a: str, b: str, metric: str, agg: dict[str, dict[str, SeedStat]]) -> Difference | None:
    """``a`` against ``b`` on ``metric`` (None when either lacks it)."""
    sa, sb = agg.get(a, {}).get(metric), agg.get(b, {}).get(metric)
    if sa is None or sb is None or sa.n == 0 or sb.n == 0:
        return None
    p = welch_p(sa.values, sb.values)
    overlap = None if sa.n < 2 or sb.n < 2 else not (sa.hi < sb.lo or sb.hi < sa.lo)
    d = metric_direction(metric)
    better = None
    if d and sa.mean != sb.mean:
        better = a if (sa.mean - sb.mean) * d > 0 else b
    return Difference(a, b, metric, sa.mean - sb.mean, p, bool(p < ALPHA), overlap, better)


def pairwise(rows: Sequence[dict[str, Any]], metric: str) -> list[Difference]:
    """Every pair of models that report ``metric``, in model order."""
    agg = aggregate(rows)
    models = [m for m in agg if metric in agg[m]]
    out = []
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            d = compare_pair(a, b, metric, agg)
            if d is not None:
                out.append(d)
    return out


# ---------------------------------------------------------------------------- tables
def _fmt(v: Any, digits: int = 4) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        if abs(v) >= 10**digits and v.is_integer():
            return f"{v:,.0f}"
        return f"{v:.{digits}g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _sig2(v: float) -> str:
    """A spread to two significant digits, without exponent (380, 8.1, 0.0032)."""
    if not _finite(v) or v == 0:
        return _fmt(v)
    decimals = 1 - int(math.floor(math.log10(abs(v))))
    return f"{round(v, decimals):.{max(0, decimals)}f}"


def _compact(v: float) -> str:
    """Large counts as 12.8k, 1.2M (for narrow columns)."""
    if not _finite(v):
        return "n/a"
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def run_table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The full per-run table of report.md: one row per model and seed."""
    metric_names = headline_keys(rows)
    header = ["model", "seed", "status", "params", "images", "images/s", "train s", "wall s", "final losses", *metric_names]
    body = []
    for r in rows:
        losses = ", ".join(f"{'total' if k == 'loss' else k} {_fmt(v)}" for k, v in sorted(r.get("final_losses", {}).items()))
        line = [r["model"], str(r["seed"]), run_status(r), _fmt(r.get("parameters", {}).get("total", float("nan"))),
                _fmt(r.get("images", float("nan"))), _fmt(r.get("images_per_s", float("nan"))),
                _fmt(r.get("train_time_s", float("nan"))), _fmt(r.get("wall_time_s", float("nan"))), losses]
        line += [_fmt(r.get("metrics", {}).get(k, float("nan"))) for k in metric_names]
        body.append(line)
    return header, body


def model_table(rows: Sequence[dict[str, Any]], interval: bool = True) -> tuple[list[str], list[list[str]]]:
    """One row per model: every headline metric as mean ± std [95 % t-interval] over the ok seeds."""
    agg = aggregate(rows)
    groups = by_model(rows)
    keys = headline_keys(rows)
    header = ["model", "seeds", "status", "params", "images", "images/s", *keys]
    body = []
    for model, group in groups.items():
        s = agg[model]
        params = group[0].get("parameters", {}).get("total", float("nan"))
        line = [model, str(len(group)), status_summary(group), _fmt(params), s["images"].text(), s["images_per_s"].text()]
        line += [s[k].text(interval=interval) if k in s else "n/a" for k in keys]
        body.append(line)
    return header, body


def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(b) + " |" for b in body]
    return "\n".join(lines)


def terminal_table(rows: Sequence[dict[str, Any]], metrics: Sequence[str] = (), width: int | None = None):
    """The terminal summary as a :class:`rich.table.Table` no wider than ``width`` (default: the
    terminal's width, at least 100 columns are assumed to be there).

    One row per model: model, status, params, images/s, the headline metric ``mean ± std``
    over seeds, then, while they fit, the swap scores, the other configured metrics' primary
    values and the images trained on. Columns that do not fit are left out (report.md has them all).
    """
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    width = width or max(100, shutil.get_terminal_size((100, 24)).columns)
    console = Console(width=10_000)
    agg, groups = aggregate(rows), by_model(rows)
    keys = {k for r in rows for k in r.get("metrics", {})}
    head = headline_metric(rows, metrics)
    optional = [k for k in (swap_keys(rows) + [_primary_key(m, keys) for m in metrics]) if k and k != head]
    optional = list(dict.fromkeys(optional))

    def cell(model: str, key: str) -> str:
        s = agg[model].get(key)
        return s.text(digits=4) if s is not None and s.n else "–"

    columns: list[tuple[str, str, Any]] = [
        ("model", "left", lambda m: m),
        ("status", "left", lambda m: status_summary(groups[m])),
        ("params", "right", lambda m: _compact(float(groups[m][0].get("parameters", {}).get("total", float("nan"))))),
        ("img/s", "right", lambda m: _compact(agg[m]["images_per_s"].mean)),
    ]
    if head:
        columns.append((head, "right", lambda m, k=head: cell(m, k)))

    def build(cols) -> Table:
        t = Table(title="genface-compare (mean ± std over seeds; full table in report.md)", title_justify="left")
        for name, justify, _ in cols:
            t.add_column(name, justify=justify, no_wrap=True)
        for m in groups:
            t.add_row(*[f(m) for _, _, f in cols])
        return t

    def fits(cols) -> bool:
        return Measurement.get(console, console.options, build(cols)).maximum <= width

    extras = [(k, "right", (lambda m, k=k: cell(m, k))) for k in optional]
    extras.append(("images", "right", lambda m: _compact(agg[m]["images"].mean)))
    for col in extras:
        if fits([*columns, col]):
            columns.append(col)
    return build(columns)


def print_summary(rows: Sequence[dict[str, Any]], metrics: Sequence[str] = (), console=None) -> None:
    """Print :func:`terminal_table` to ``console`` (default: a console at the terminal's width)."""
    from rich.console import Console

    console = console or Console()
    console.print(terminal_table(rows, metrics, width=console.width))


# ---------------------------------------------------------------------------- figures
def _plt():
    from genface.utils import pyplot

    return pyplot("genface-compare's figures")


def side_by_side(rows: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Every run's sample grid in one figure (first seed of each model)."""
    from PIL import Image

    shown = [r for r in rows if r.get("grid") and Path(r["grid"]).is_file()]
    shown = [g[0] for g in by_model(shown).values()]
    if not shown:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 4.4), squeeze=False)
    for ax, r in zip(axes[0], shown):
        ax.imshow(Image.open(r["grid"]))
        status = run_status(r)
        ax.set_title(f"{r['model']} (seed {r['seed']})" + ("" if status == "ok" else f" — {status}"))
        ax.axis("off")
    fig.suptitle("genface-compare samples (synthetic)")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Description": "synthetic: generated by genface models"})
    plt.close(fig)
    return path


def loss_curves(rows: Sequence[dict[str, Any]], path: Path, out: Path) -> Path:
    """Each model's training losses against steps (first seed)."""
    shown = [g[0] for g in by_model(rows).values()]
    plt = _plt()
    fig, axes = plt.subplots(1, len(shown), figsize=(4.5 * len(shown), 3.5), squeeze=False)
    for ax, r in zip(axes[0], shown):
        hist = loss_history(run_dir(out, r["model"], r["seed"]) / "metrics.csv")
        for name, (steps, vals) in sorted(hist.items()):
            k = max(1, len(vals) // 50)  # moving average over ~2% of the run
            smooth = [sum(vals[max(0, i - k + 1): i + 1]) / len(vals[max(0, i - k + 1): i + 1]) for i in range(len(vals))]
            ax.plot(steps, smooth, label=name)
        ax.set_title(r["model"])
        ax.set_xlabel("step")
        if hist:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Description": "generated by genface-compare"})
    plt.close(fig)
    return path


def learning_curves(rows: Sequence[dict[str, Any]], path: Path, out: Path) -> Path | None:
    """The ``metric/*`` curves of every run (:class:`genface.training.eval_callback.EvalEvery`)
    against images seen (left) and training wall time (right); one colour per model, one line
    per seed. ``None`` when no run has curves."""
    curves = {(r["model"], r["seed"]): read_curves(run_dir(out, r["model"], r["seed"]) / "metrics.csv") for r in rows}
    names = sorted({k for c in curves.values() for k in c if "/" not in k or k.endswith(("/mae", "/face_rate"))})
    if not names:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(names), 2, figsize=(10, 3.2 * len(names)), squeeze=False)
    colours = {m: f"C{i}" for i, m in enumerate(by_model(rows))}
    for row_axes, name in zip(axes, names):
        labelled = set()
        for (model, _seed), c in curves.items():
            pts = c.get(name)
            if not pts:
                continue
            label = None if model in labelled else model
            labelled.add(model)
            for ax, x in zip(row_axes, (0, 1)):
                ax.plot([p[x] for p in pts], [p[2] for p in pts], marker="o", ms=3, color=colours[model], label=label, alpha=0.8)
        row_axes[0].set_xlabel("training images seen")
        row_axes[1].set_xlabel("training wall time (s, evaluations excluded)")
        for ax in row_axes:
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
        row_axes[0].legend(fontsize=8)
    fig.suptitle("learning curves (genface-compare)")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Description": "generated by genface-compare"})
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------- the study
#: model names of the study preset (configs/compare_study.yaml)
STUDY_AB = ("stylegan_a", "stylegan_b")
STUDY_ORDER = ("stylegan2", "stylegan", "progan", "dcgan")
STUDY_RECON = ("vae", "faceswap")
#: reconstruction metrics the study reads, first found wins (the CPU preset has recon1k, the GPU one recon_full)
STUDY_RECON_METRICS = ("recon1k", "recon_full")


@dataclass(frozen=True)
class StudyAnswer:
    """One question of the study, answered from results.

    Args:
        question: the question.
        answer: a one-paragraph answer with the numbers.
        holds: True / False where the question is a yes/no claim, None when it cannot be decided.
        evidence: markdown table lines backing the answer.
    """

    question: str
    answer: str
    holds: bool | None
    evidence: tuple[str, ...] = ()


def _pair_phrase(d: Difference) -> str:
    if math.isnan(d.p):
        return "one seed only: no spread to compare with"
    return f"Welch p = {d.p:.3g}: " + ("larger than the seed spread" if d.significant else "within the seed spread")


def _not_ok(groups, models) -> list[str]:
    return [f"{m} is {status_summary(groups[m])}" for m in models if m in groups and status_summary(groups[m]) != "ok"]


def health_notes(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per run that is not ok, with the health check's reasons or the error."""
    out = []
    for r in rows:
        status = run_status(r)
        if status != "ok":
            why = r.get("error") or "; ".join(r.get("health", {}).get("reasons", [])) or "a loss or metric is not finite"
            out.append(f"- {r['model']} seed {r['seed']}: **{status}**: {why}")
    return out


def _evidence(agg, models, keys) -> tuple[str, ...]:
    header = ["model", *keys]
    body = [[m, *[agg[m][k].text(interval=True) if k in agg[m] else "n/a" for k in keys]] for m in models if m in agg]
    return tuple(markdown_table(header, body).splitlines())


def answer_ab(rows: Sequence[dict[str, Any]], metric: str) -> StudyAnswer:
    """Does StyleGAN config B (tuning + bilinear resampling) beat config A (the ProGAN baseline)?"""
    q = "Does StyleGAN config B beat config A?"
    agg, groups = aggregate(rows), by_model(rows)
    a, b = STUDY_AB
    d = compare_pair(b, a, metric, agg)
    if d is None:
        return StudyAnswer(q, f"not answered: the results lack {a} or {b} with {metric}.", None)
    sa, sb = agg[a][metric], agg[b][metric]
    beats = d.better == b
    if math.isnan(d.p):
        verdict, holds = ("B is better by the mean" if beats else "A is better or equal by the mean") + \
            " (one seed: no spread to test against)", None
    elif d.significant:
        verdict, holds = ("Yes" if beats else "No: A is better beyond the seed spread"), beats
    else:
        verdict, holds = ("Not shown: B is better by the mean, but within the seed spread" if beats
                          else "No: A is better or equal by the mean, within the seed spread"), None if beats else False
    text = f"{verdict}. {metric}: B {sb.text()} vs A {sa.text()} (n = {sb.n}, {sa.n}; {_pair_phrase(d)})."
    notes = _not_ok(groups, STUDY_AB)
    if notes:
        text += " Note: " + "; ".join(notes) + " (those seeds are left out)."
    return StudyAnswer(q, text, holds, _evidence(agg, STUDY_AB, [metric, "images"]))


def answer_order(rows: Sequence[dict[str, Any]], metric: str) -> StudyAnswer:
    """At equal images, does StyleGAN2 ≤ StyleGAN ≤ ProGAN ≤ DCGAN hold on ``metric`` (lower = better)?"""
    q = "At equal images, does StyleGAN2 ≤ StyleGAN ≤ ProGAN ≤ DCGAN hold?"
    agg, groups = aggregate(rows), by_model(rows)
    present = [m for m in STUDY_ORDER if m in agg and metric in agg[m]]
    if len(present) < 2:
        return StudyAnswer(q, f"not answered: fewer than two of {list(STUDY_ORDER)} report {metric}.", None)
    sign = metric_direction(metric) or -1
    parts, violations, unsure = [], [], []
    for left, right in zip(present, present[1:]):
        d = compare_pair(left, right, metric, agg)
        ok_mean = d.diff * sign >= 0  # left better than or equal to right
        phrase = f"{left} {agg[left][metric].text()} {'≤' if ok_mean else '>'} {right} {agg[right][metric].text()} ({_pair_phrase(d)})"
        parts.append(phrase)
        if not ok_mean:
            (violations if d.significant else unsure).append(f"{left} vs {right}")
        elif not d.significant:
            unsure.append(f"{left} vs {right}")
    images = {m: agg[m]["images"].mean for m in present}
    equal = max(images.values()) <= 1.01 * min(images.values()) if all(_finite(v) for v in images.values()) else False
    missing = [m for m in STUDY_ORDER if m not in present]
    if not violations and not unsure:
        text, holds = ("Yes, every step of the order is larger than the seed spread. " if not missing else
                       "Among the models that ran, yes: every step is larger than the seed spread. "), not missing or None
    elif not violations:
        text, holds = "Not shown: no step is reversed beyond the seed spread, but " + ", ".join(unsure) + \
            " are within it (or reversed within it). ", None
    else:
        text, holds = "No: the order is reversed beyond the seed spread for " + ", ".join(violations) + ". ", False
    text += f"On {metric} (lower is better): " + "; ".join(parts) + "."
    if missing:
        text += f" Missing: {missing}."
    if not equal:
        text += " The models did not see equal images (" + ", ".join(f"{m} {_compact(v)}" for m, v in images.items()) + ")."
    notes = _not_ok(groups, STUDY_ORDER)
    if notes:
        text += " Why it may not hold: " + "; ".join(notes) + " (those seeds are left out)."
    return StudyAnswer(q, text, holds, _evidence(agg, present, [metric, "images", "images_per_s"]))


def answer_recon(rows: Sequence[dict[str, Any]]) -> StudyAnswer:
    """How do the VAE's and FaceSwap's reconstructions compare (``recon1k`` or ``recon_full``: MAE, PSNR, SSIM)?"""
    q = "How do the VAE and FaceSwap reconstructions compare?"
    agg, groups = aggregate(rows), by_model(rows)
    vae, fs = STUDY_RECON
    both = set(agg.get(vae, {})) & set(agg.get(fs, {}))
    keys = next(([f"{m}/{p}" for p in ("mae", "psnr", "ssim") if f"{m}/{p}" in both]
                 for m in STUDY_RECON_METRICS if f"{m}/mae" in both), [])
    if not keys:
        return StudyAnswer(q, f"not answered: the results lack {vae} or {fs} with one of {list(STUDY_RECON_METRICS)}.",
                           None)
    parts, wins = [], Counter()
    for k in keys:
        d = compare_pair(vae, fs, k, agg)
        parts.append(f"{k}: VAE {agg[vae][k].text()} vs FaceSwap {agg[fs][k].text()} "
                     f"({'better: ' + d.better if d.better else 'tie'}; {_pair_phrase(d)})")
        if d.better and (d.significant or math.isnan(d.p)):
            wins[d.better] += 1
    one_seed = all(math.isnan(compare_pair(vae, fs, k, agg).p) for k in keys)
    if wins and len(wins) == 1:
        lead = (f"{'The VAE' if vae in wins else 'FaceSwap'} reconstructs better on {sum(wins.values())} of "
                f"{len(keys)} scores " + ("by the value (one seed: no spread to test against). " if one_seed
                                          else "beyond the seed spread. "))
    elif wins:
        lead = "Mixed: " + ", ".join(f"{m} wins {n}" for m, n in wins.items()) + f" of {len(keys)} scores. "
    else:
        lead = "No difference beyond the seed spread. "
    text = lead + "; ".join(parts) + (". FaceSwap is measured on its identity A's faces through decoder A (it is "
                                      "trained on two identities), the VAE on faces of every identity; both "
                                      "reference sets include training images.")
    notes = _not_ok(groups, STUDY_RECON)
    if notes:
        text += " Note: " + "; ".join(notes) + "."
    return StudyAnswer(q, text, None, _evidence(agg, STUDY_RECON, keys))


def study_answers(results: dict[str, Any] | Sequence[dict[str, Any]], metric: str | None = None) -> list[StudyAnswer]:
    """The study's three answers from ``results.json``'s content (or its ``results`` rows).

    Args:
        results: the parsed ``results.json`` (``{"config": ..., "results": [...]}``) or its rows.
        metric: the generator metric to rank by; ``None`` = the headline metric of the config.
    """
    rows = results["results"] if isinstance(results, dict) else list(results)
    settings = results.get("config", {}) if isinstance(results, dict) else {}
    metric = metric or headline_metric(rows, settings.get("metrics", ()))
    if metric is None:
        return []
    return [answer_ab(rows, metric), answer_order(rows, metric), answer_recon(rows)]


def study_markdown(answers: Sequence[StudyAnswer]) -> str:
    """The answers as a markdown section body."""
    lines = []
    for a in answers:
        lines += [f"**{a.question}** {a.answer}", ""]
        if a.evidence:
            lines += [*a.evidence, ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- report.md
def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=float))
    tmp.replace(path)


def write_report(settings: dict[str, Any], rows: Sequence[dict[str, Any]], out: str | Path,
                 environment: str = "") -> Path:
    """Write ``report.md``, ``results.json`` and the figures into ``out``; returns report.md's path.

    Args:
        settings: the comparison's settings as plain data (compare.yaml's keys).
        rows: result rows (one per model and seed).
        out: the comparison's output folder (run folders under ``runs/``).
        environment: a line on the machine (device, torch version, threads).
    """
    from genface.metrics import get_metric

    out = Path(out)
    rows = list(rows)
    metrics = list(settings.get("metrics", ()))
    seeds = list(settings.get("seeds", ()))
    budget = []
    if settings.get("budget_images"):
        budget.append(f"{settings['budget_images']:,} images")
    if settings.get("budget_seconds"):
        budget.append(f"{settings['budget_seconds']:g} s of training")
    lines = [
        "# genface-compare report", "",
        "_All images are synthetic, generated by genface models._", "",
        f"- data: `{settings.get('data_config')}`"
        f"{' at ' + settings['data_path'] if settings.get('data_path') else ''}, {settings.get('resolution')} px",
        f"- budget per model: {' or '.join(budget) or 'none'}, whichever comes first (batch {settings.get('batch_size')}); "
        f"seeds {seeds}",
        f"- trainer: `{settings.get('trainer_config')}`{'; ' + environment if environment else ''}", "",
        "## Summary", "",
    ]
    header, body = model_table(rows)
    lines += [markdown_table(header, body), "",
              "Metrics as mean ± std over the seeds whose status is ok or suspect, with the 95 % Student-t interval of the mean "
              "in brackets (one seed: the value). `status`: ok; suspect (finished, but look at its samples); collapsed; "
              "diverged; failed (training raised): see \"Runs that are not ok\" below; collapsed, diverged and failed "
              "runs are left out of the statistics. `images`: training "
              "images each model got within the budget; `images/s`: after warm-up.", ""]
    head = headline_metric(rows, metrics)
    if len(seeds) > 1 and head:
        diffs = [d for k in dict.fromkeys([head, *[_primary_key(m, {k for r in rows for k in r.get('metrics', {})})
                                                   for m in metrics]]) if k for d in pairwise(rows, k)]
        if diffs:
            lines += ["## Which differences exceed the spread between seeds", "",
                      f"Welch's t-test (unequal variances), two-sided, p < {ALPHA}; `intervals overlap`: the two "
                      "95 % t-intervals of the mean overlap. With few seeds the test has little power: `no` means the difference is not shown, not that the models are equal.", "",
                      markdown_table(["metric", "a", "b", "a − b", "better", "Welch p", "exceeds seed spread", "intervals overlap"],
                                     [[d.metric, d.a, d.b, _fmt(d.diff), d.better or "–", _fmt(d.p, 3),
                                       "yes" if d.significant else "no", "–" if d.overlap is None else ("yes" if d.overlap else "no")]
                                      for d in diffs]), ""]
    answers = study_answers({"config": settings, "results": rows}, head) if head else []
    if any(a.holds is not None or not a.answer.startswith("not answered") for a in answers):
        lines += ["## Study answers", "", study_markdown([a for a in answers if not a.answer.startswith("not answered")])]
    header, body = run_table(rows)
    lines += ["## Every run", "", markdown_table(header, body), "",
              "`params`: trainable parameters (generator + discriminator for GANs); `train s`: training wall time "
              "(learning-curve evaluations excluded); `wall s`: training + evaluation; losses: mean of the last 10 % "
              "of logged values.", ""]
    notes = health_notes(rows)
    if notes:
        lines += ["Runs that are not ok:", "", *notes, ""]
    metric_names = sorted({k.split("/")[0] for r in rows for k in r.get("metrics", {})} & set(metrics))
    if metric_names:
        lines += ["## Metrics and their protocols", "", "| metric | protocol | paper | agrees with |", "|---|---|---|---|"]
        for name in metric_names:
            spec = get_metric(name)
            lines.append(f"| `{name}` | {spec.description} | {spec.paper} | {spec.reference_impl} |")
        lines.append("")
    skipped = {(r["model"], k): v for r in rows for k, v in r.get("metrics_skipped", {}).items()}
    if skipped:
        lines += ["Metrics not computed:", ""] + [f"- {m} / `{k}`: {v}" for (m, k), v in sorted(skipped.items())] + [""]
    extra = sorted({k for r in rows for k in r.get("metrics", {})} - set(headline_keys(rows)))
    if extra:
        lines += ["## Metric details", "", "| model | seed | " + " | ".join(extra) + " |", "|---|---|" + "---|" * len(extra)]
        lines += [f"| {r['model']} | {r['seed']} | " + " | ".join(_fmt(r["metrics"].get(k, float("nan"))) for k in extra) + " |"
                  for r in rows if r.get("metrics")]
        lines.append("")
    from genface.utils import missing_extra

    no_plots = missing_extra("matplotlib", feature="genface-compare's figures")
    if no_plots:  # the tables and results.json are written all the same
        print(f"figures skipped: {no_plots}")
        lines += [f"Figures skipped: {no_plots}", ""]
    side = None if no_plots else side_by_side(rows, out / "samples_side_by_side.png")
    if side:
        lines += ["## Samples", "", f"![samples]({side.name})", ""]
        lines += [f"- {r['model']} (seed {r['seed']}): `{Path(r['grid']).relative_to(out)}`" for r in rows if r.get("grid")]
        lines.append("")
    curves = None if no_plots else learning_curves(rows, out / "learning_curves.png", out)
    if curves:
        lines += ["## Learning curves", "", f"![learning curves]({curves.name})", "",
                  "Metrics evaluated during training (`eval_metrics`, every `eval_every_images` images) against images "
                  "seen and against training wall time; one line per seed.", ""]
    losses = None if no_plots else loss_curves(rows, out / "loss_curves.png", out)
    if losses:
        lines += ["## Loss curves", "", f"![loss curves]({losses.name})", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    _write_json(out / "results.json", {"config": settings, "results": rows})
    return report


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m genface.report results.json [--write]``: print the study's answers (and the
    terminal summary); ``--write`` re-renders report.md and the figures next to results.json."""
    p = argparse.ArgumentParser(prog="python -m genface.report", description=main.__doc__)
    p.add_argument("results", type=Path, help="a results.json written by genface-compare")
    p.add_argument("--metric", default=None, help="generator metric to rank by (default: the headline metric)")
    p.add_argument("--write", action="store_true", help="rewrite report.md and the figures next to results.json")
    args = p.parse_args(argv)
    data = json.loads(args.results.read_text())
    print_summary(data["results"], data.get("config", {}).get("metrics", ()))
    for a in study_answers(data, args.metric):
        print(f"\n{a.question}\n  {a.answer}")
    if args.write:
        print(write_report(data.get("config", {}), data["results"], args.results.parent))


if __name__ == "__main__":
    main()
