"""The metric registry: names that state the protocol, and the one evaluation entry point.

Modelled on NVlabs ``stylegan2-ada-pytorch`` ``metrics/metric_main.py``
(``@register_metric def fid50k_full(opts)``): every metric is registered under a name
that says what was measured (``fid10k_full`` = FID, 10k generated images against the full
reference set), every entry declares what it needs from the model under test, and an
unknown name raises an error listing the valid ones.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

#: What a metric may need from the caller of :func:`compute_metric`.
#: ``"generator"``: ``generator_fn(n, seed) -> (n, 3, H, W)`` float in ``[-1, 1]``;
#: ``"reference"``: a dataset following genface's sample contract, or a tensor;
#: ``"autoencoder"``: ``recon_fn(x) -> x_hat`` (both ``(N, 3, H, W)`` in ``[-1, 1]``);
#: ``"stylegan_mapping"``: a model with ``mapping(z)`` and ``synthesis(ws, noise_mode=...)``;
#: ``"swapper"``: ``swap_fn(x, target) -> y`` (x faces (N, 3, H, W) in ``[-1, 1]``, target the
#: identity index to swap to, 0 = A, 1 = B) and ``swap_data`` (a
#: :class:`genface.metrics.swap.SwapEvalSet` of held-out faces).
NEEDS = ("generator", "reference", "autoencoder", "stylegan_mapping", "swapper")


@dataclasses.dataclass
class EvalContext:
    """Everything a metric implementation receives (built by :func:`compute_metric`).

    Args:
        generator_fn: ``generator_fn(n, seed)`` returning ``n`` images ``(n, 3, H, W)`` in
            ``[-1, 1]``; ``None`` when the model under test is not a generator.
        reference: the real images: a dataset whose items are dicts with ``"image"``
            ``(3, H, W)`` in ``[-1, 1]``, or a tensor ``(N, 3, H, W)`` in ``[-1, 1]``;
            ``None`` when not given.
        recon_fn: ``recon_fn(x) -> x_hat`` for autoencoders; ``None`` otherwise.
        model: object with ``mapping(z)`` / ``synthesis(ws, noise_mode=...)`` (StyleGAN
            family) for PPL; ``None`` otherwise.
        device: where networks run.
        batch_size: images per forward pass.
        seed: base seed; generated batch ``b`` is drawn with ``seed + b``.
        cache_dir: where reference statistics and the SyntheticFaces feature net are
            cached; ``None`` = ``$GENFACE_CACHE`` or ``~/.cache/genface/metrics``.
        reference_key: a name for the reference set used in cache file names (e.g.
            ``"synthfaces-n10000-s0"``); ``None`` = a SHA-1 of the reference's pixels.
        memo: per-call store shared by the metrics of one :func:`compute_metrics` call
            (generated features are computed once for FID, KID, IS and PR together).
        swap_fn: ``swap_fn(x, target) -> y`` for face swappers (x, y ``(N, 3, H, W)`` in
            ``[-1, 1]``; target 0 = A, 1 = B); ``None`` otherwise.
        swap_data: the held-out faces swap metrics judge
            (:class:`genface.metrics.swap.SwapEvalSet`); ``None`` otherwise.
    """

    generator_fn: Callable[[int, int], torch.Tensor] | None = None
    reference: Any = None
    recon_fn: Callable[[torch.Tensor], torch.Tensor] | None = None
    model: Any = None
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    batch_size: int = 64
    seed: int = 0
    cache_dir: Path | None = None
    reference_key: str | None = None
    memo: dict = dataclasses.field(default_factory=dict)
    swap_fn: Callable[[torch.Tensor, int], torch.Tensor] | None = None
    swap_data: Any = None


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """A registered metric.

    Args:
        name: registry name; states the protocol (count of images, reference set, space).
        fn: ``fn(ctx: EvalContext, **opts) -> dict[str, float]``.
        needs: subset of :data:`NEEDS` the caller must supply.
        requires: external resources (``"inception_weights"``, ``"dlib"``); empty = none.
        description: one line for tables and ``--help``.
        paper: citation of the paper that defines the metric.
        reference_impl: the public implementation whose numbers this one agrees with.
    """

    name: str
    fn: Callable[..., dict[str, float]]
    needs: tuple[str, ...]
    requires: tuple[str, ...] = ()
    description: str = ""
    paper: str = ""
    reference_impl: str = ""

    def unavailable_reason(self, **opts: Any) -> str | None:
        """``None`` when every resource in ``requires`` is present, else why not."""
        for r in self.requires:
            checker = _RESOURCE_CHECKS.get(r)
            if checker is None:
                return f"unknown resource {r!r}"
            why = checker(**opts)
            if why:
                return why
        return None


_METRICS: dict[str, MetricSpec] = {}
_RESOURCE_CHECKS: dict[str, Callable[..., str | None]] = {}


def register_resource_check(name: str, fn: Callable[..., str | None]) -> None:
    """Register how to tell whether resource ``name`` is available (``None`` = yes)."""
    _RESOURCE_CHECKS[name] = fn


def register_metric(
    name: str,
    *,
    needs: Sequence[str],
    requires: Sequence[str] = (),
    description: str = "",
    paper: str = "",
    reference_impl: str = "",
):
    """Decorator registering ``fn(ctx, **opts) -> dict[str, float]`` under ``name``.

    Args:
        name: the registry name; must be new.
        needs: what the caller must pass, from :data:`NEEDS`.
        requires: external resources, see :class:`MetricSpec`.
        description: one line saying what is measured and how.
        paper: the defining paper.
        reference_impl: the implementation this one agrees with.
    """
    bad = [n for n in needs if n not in NEEDS]
    if bad:
        raise ValueError(f"metric {name!r}: unknown needs {bad}; valid: {list(NEEDS)}")

    def deco(fn):
        if name in _METRICS:
            raise ValueError(f"metric {name!r} registered twice")
        _METRICS[name] = MetricSpec(
            name, fn, tuple(needs), tuple(requires), description, paper, reference_impl
        )
        return fn

    return deco


def list_metrics(available: Iterable[str] | None = None) -> list[str]:
    """Sorted names of registered metrics.

    Args:
        available: what the model under test can supply (subset of :data:`NEEDS`, e.g.
            ``{"generator", "reference"}``); only metrics whose ``needs`` it covers are
            listed. ``None`` lists all.
    """
    if available is None:
        return sorted(_METRICS)
    have = set(available)
    return sorted(n for n, s in _METRICS.items() if set(s.needs) <= have)


def get_metric(name: str) -> MetricSpec:
    """The :class:`MetricSpec` registered as ``name``; ``KeyError`` listing valid names."""
    try:
        return _METRICS[name]
    except KeyError:
        raise KeyError(
            f"unknown metric {name!r}; valid metrics: {', '.join(sorted(_METRICS))}"
        ) from None


def _make_context(
    generator_fn, reference, device, recon_fn, model, batch_size, seed, cache_dir, reference_key,
    swap_fn=None, swap_data=None,
) -> EvalContext:
    return EvalContext(
        generator_fn=generator_fn,
        reference=reference,
        recon_fn=recon_fn,
        model=model,
        device=torch.device(device),
        batch_size=batch_size,
        seed=seed,
        cache_dir=Path(cache_dir) if cache_dir is not None else None,
        reference_key=reference_key,
        swap_fn=swap_fn,
        swap_data=swap_data,
    )


def _check_needs(spec: MetricSpec, ctx: EvalContext) -> None:
    given = {
        "generator": ctx.generator_fn is not None,
        "reference": ctx.reference is not None,
        "autoencoder": ctx.recon_fn is not None,
        "stylegan_mapping": ctx.model is not None,
        "swapper": ctx.swap_fn is not None and ctx.swap_data is not None,
    }
    missing = [n for n in spec.needs if not given[n]]
    if missing:
        args = {"generator": "generator_fn", "reference": "reference",
                "autoencoder": "recon_fn", "stylegan_mapping": "model",
                "swapper": "swap_fn= and swap_data"}
        raise ValueError(
            f"metric {spec.name!r} needs {list(spec.needs)}; missing: "
            + ", ".join(f"{m} (pass {args[m]}=)" for m in missing)
        )


def compute_metric(
    name: str,
    generator_fn: Callable[[int, int], torch.Tensor] | None = None,
    reference: Any = None,
    device: str | torch.device = "cpu",
    *,
    recon_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    model: Any = None,
    batch_size: int = 64,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    reference_key: str | None = None,
    swap_fn: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
    swap_data: Any = None,
    **opts: Any,
) -> dict[str, float]:
    """Evaluate one registered metric; see the package docstring of :mod:`genface.metrics`.

    Returns a flat ``dict[str, float]``: the headline value under ``name`` and any extras
    under ``name/<what>`` (for example ``swd16k/64px``), plus ``name/seconds``.
    ``opts`` go to the metric (e.g. ``inception_weights=``); unknown ones raise.
    ``swap_fn`` and ``swap_data`` are what the ``"swapper"`` metrics need
    (:mod:`genface.metrics.swap`).
    """
    return compute_metrics(
        [name], generator_fn, reference, device, recon_fn=recon_fn, model=model,
        batch_size=batch_size, seed=seed, cache_dir=cache_dir, reference_key=reference_key,
        swap_fn=swap_fn, swap_data=swap_data, **opts,
    )


def compute_metrics(
    names: Sequence[str],
    generator_fn: Callable[[int, int], torch.Tensor] | None = None,
    reference: Any = None,
    device: str | torch.device = "cpu",
    *,
    recon_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    model: Any = None,
    batch_size: int = 64,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    reference_key: str | None = None,
    swap_fn: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
    swap_data: Any = None,
    **opts: Any,
) -> dict[str, float]:
    """Evaluate several metrics, sharing generated images' features between them.

    Same arguments as :func:`compute_metric`; ``opts`` are passed to every metric that
    accepts them (an option no listed metric accepts raises ``TypeError``).
    """
    import inspect

    specs = [get_metric(n) for n in names]
    ctx = _make_context(
        generator_fn, reference, device, recon_fn, model, batch_size, seed, cache_dir,
        reference_key, swap_fn, swap_data,
    )
    for spec in specs:
        _check_needs(spec, ctx)
    used: set[str] = set()
    calls = []
    for spec in specs:
        params = inspect.signature(spec.fn).parameters
        takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
        bound = getattr(spec.fn, "keywords", {})  # protocol fixed by functools.partial
        mine = {k: v for k, v in opts.items() if k not in bound and (takes_all or k in params)}
        used.update(mine)
        calls.append((spec, mine))
    unused = sorted(set(opts) - used)
    if unused:
        raise TypeError(f"option(s) {unused} accepted by none of the metrics {list(names)}")
    results: dict[str, float] = {}
    for spec, mine in calls:
        t0 = time.perf_counter()
        out = spec.fn(ctx, **mine)
        results.update({k: float(v) for k, v in out.items()})
        results[f"{spec.name}/seconds"] = time.perf_counter() - t0
    return results
