"""Plumbing shared by the metrics: image streams, 8-bit quantisation, the reference cache.

Images travel between metrics as ``uint8`` ``(N, 3, H, W)`` tensors: generated images are
quantised exactly as NVlabs' ``metric_utils`` does (``x * 127.5 + 128``, clamped, truncated)
so that generated and real images are measured at the same bit depth.

Reference features are cached per (feature network, reference set, resolution, count)
under the cache dir as safetensors, written atomically (temporary file + ``os.replace``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from genface.utils import atomic_path
from genface.utils import cache_dir as genface_cache_dir

ENV_CACHE = "GENFACE_CACHE"


class FeatureExtractor(Protocol):
    """What the feature-space metrics need from a network.

    ``cache_name`` identifies the network and its weights (it goes into cache file names);
    calling it on ``uint8`` images ``(N, 3, H, W)`` returns named float features ``(N, D)``.
    """

    cache_name: str

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]: ...


def cache_dir(path: str | Path | None = None) -> Path:
    """The metric cache folder (created): ``path``, else ``$GENFACE_CACHE/metrics``, else
    ``~/.cache/genface/metrics`` (the same root as :class:`genface.data.SyntheticFaces`' cache)."""
    p = genface_cache_dir("metrics", create=False) if path is None else Path(path).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


def atomic_save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> Path:
    """Write a safetensors file atomically, with genface's ``synthetic`` provenance field."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in tensors.items()},
            tmp,
            metadata={"synthetic": "true", "writer": "genface.metrics", **metadata},
        )
    return path


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Quantise float images in ``[-1, 1]`` to ``uint8`` like NVlabs (``x*127.5+128``, truncated)."""
    check_images(images, "images")
    if images.dtype == torch.uint8:
        return images
    return (images.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """``uint8`` images back to float in ``[-1, 1]``."""
    return images.float() / 127.5 - 1.0


def check_images(x: torch.Tensor, what: str) -> None:
    """Fail loudly unless ``x`` is ``(N, 3, H, W)``."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what}: expected a tensor (N, 3, H, W), got {shape}")


def reference_len(reference: Any) -> int:
    """Number of images in a reference dataset or tensor."""
    return int(reference.shape[0]) if isinstance(reference, torch.Tensor) else len(reference)


def iter_reference(reference: Any, batch_size: int, max_items: int | None = None) -> Iterator[torch.Tensor]:
    """Yield ``uint8`` batches ``(B, 3, H, W)`` of the first ``max_items`` reference images.

    Args:
        reference: a tensor ``(N, 3, H, W)`` (float in ``[-1, 1]`` or ``uint8``) or a
            dataset whose items are dicts holding ``"image"`` float ``(3, H, W)`` in ``[-1, 1]``.
        batch_size: images per batch.
        max_items: stop after this many; ``None`` = all.
    """
    n = reference_len(reference)
    n = n if max_items is None else min(n, max_items)
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        if isinstance(reference, torch.Tensor):
            batch = reference[start:stop]
        else:
            items = [reference[i] for i in range(start, stop)]
            if not isinstance(items[0], dict) or "image" not in items[0]:
                raise ValueError(
                    "reference dataset items must be dicts with an 'image' entry "
                    f"(genface sample contract), got {type(items[0]).__name__}"
                )
            batch = torch.stack([it["image"] for it in items])
        yield to_uint8(batch)


def iter_generated(
    generator_fn: Callable[[int, int], torch.Tensor], num: int, seed: int, batch_size: int
) -> Iterator[torch.Tensor]:
    """Yield ``uint8`` batches of ``num`` generated images; batch ``b`` uses seed ``seed + b``."""
    for b, start in enumerate(range(0, num, batch_size)):
        n = min(batch_size, num - start)
        with torch.no_grad():
            x = generator_fn(n, seed + b)
        check_images(x, "generator_fn output")
        if x.shape[0] != n:
            raise ValueError(f"generator_fn({n}, seed) returned {x.shape[0]} images")
        yield to_uint8(x.detach().cpu())


class _Subset:
    """A fixed selection of a reference dataset (same item contract)."""

    def __init__(self, base: Any, indices: list[int]):
        self.base, self.indices = base, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.base[self.indices[i]]


def reference_subset(reference: Any, num: int, seed: int = 0) -> Any:
    """``num`` reference images drawn without replacement with ``seed`` (all when fewer, in order).

    Returns a tensor for a tensor reference, else a dataset view.
    """
    n = reference_len(reference)
    if num >= n:
        return reference
    idx = sorted(torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:num].tolist())
    if isinstance(reference, torch.Tensor):
        return reference[idx]
    return _Subset(reference, idx)


def reference_hash(reference: Any, batch_size: int = 256, max_items: int | None = None) -> str:
    """SHA-1 (16 hex digits) of the quantised pixels of the reference images."""
    h = hashlib.sha1()
    for batch in iter_reference(reference, batch_size, max_items):
        h.update(batch.numpy().tobytes())
    return h.hexdigest()[:16]


def _extract(extractor: FeatureExtractor, batches: Iterator[torch.Tensor], device: torch.device) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for batch in batches:
            for k, v in extractor(batch.to(device)).items():
                parts.setdefault(k, []).append(v.detach().float().cpu().numpy())
    if not parts:
        raise ValueError("no images to extract features from")
    return {k: np.concatenate(v) for k, v in parts.items()}


def reference_features(
    reference: Any,
    extractor: FeatureExtractor,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    max_items: int | None = None,
    cache: str | Path | None = None,
    key: str | None = None,
    use_cache: bool = True,
) -> dict[str, np.ndarray]:
    """Features of the reference images, computed once and cached.

    Args:
        reference: see :func:`iter_reference`.
        extractor: the feature network.
        device: where the network runs.
        batch_size: images per forward pass.
        max_items: use the first ``max_items`` images; ``None`` = all ("full").
        cache: cache folder, see :func:`cache_dir`.
        key: name of the reference set in the cache file name; ``None`` = pixel SHA-1.
        use_cache: ``False`` always recomputes and writes nothing.
    """
    n = reference_len(reference) if max_items is None else min(max_items, reference_len(reference))
    first = next(iter_reference(reference, 1))
    res = f"{first.shape[2]}x{first.shape[3]}"
    path = None
    if use_cache:
        key = key or reference_hash(reference, max_items=max_items)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
        path = cache_dir(cache) / "reference" / f"{extractor.cache_name}__{safe}__{res}__n{n}.safetensors"
        if path.is_file():
            from safetensors.numpy import load_file

            return load_file(str(path))
    feats = _extract(extractor, iter_reference(reference, batch_size, max_items), torch.device(device))
    if path is not None:
        atomic_save_tensors(
            {k: torch.from_numpy(v) for k, v in feats.items()},
            path,
            {"reference_key": key or "", "extractor": extractor.cache_name, "num_images": str(n),
             "resolution": res, "json": json.dumps({"n": n})},
        )
    return feats


def generated_features(
    generator_fn: Callable[[int, int], torch.Tensor],
    extractor: FeatureExtractor,
    num: int,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    memo: dict | None = None,
) -> dict[str, np.ndarray]:
    """Features of ``num`` generated images (shared through ``memo`` within one evaluation)."""
    mkey = ("gen_features", extractor.cache_name, num, seed, batch_size)
    if memo is not None and mkey in memo:
        return memo[mkey]
    feats = _extract(extractor, iter_generated(generator_fn, num, seed, batch_size), torch.device(device))
    if memo is not None:
        memo[mkey] = feats
    return feats


def feature_pair(ctx: Any, extractor: FeatureExtractor, num_gen: int, layer: str,
                 reference: bool = True, device: Any = None) -> tuple[np.ndarray | None, np.ndarray]:
    """The metric modules' one feature pipeline (NVlabs ``metrics/metric_utils.py``): the
    reference set's features (cached under ``ctx.cache_dir`` by ``ctx.reference_key``) and
    ``num_gen`` generated images' features (memoised in ``ctx.memo``), both from ``extractor``'s
    output ``layer``.

    Args:
        ctx: the metric's :class:`~genface.metrics.registry.EvalContext`.
        extractor: the feature network.
        num_gen: generated images.
        layer: which output of the extractor (``"pool"``, ``"logits"``, ...).
        reference: False = only the generated features (the first item is ``None``).
        device: where the extractor runs; ``None`` = ``ctx.device``.
    """
    device = ctx.device if device is None else device
    real = None
    if reference:
        real = reference_features(ctx.reference, extractor, device=device, batch_size=ctx.batch_size,
                                  cache=ctx.cache_dir, key=ctx.reference_key)[layer]
    gen = generated_features(ctx.generator_fn, extractor, num_gen, seed=ctx.seed, device=device,
                             batch_size=ctx.batch_size, memo=ctx.memo)[layer]
    return real, gen


def inception_pair(ctx: Any, num_gen: int, inception_weights: str | None = None, layer: str = "pool",
                   reference: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """:func:`feature_pair` with the Inception-v3 extractor (FID, KID, precision/recall, IS)."""
    from genface.metrics.inception import inception_extractor

    ext = inception_extractor(inception_weights, ctx.device, ctx.cache_dir)
    return feature_pair(ctx, ext, num_gen, layer, reference=reference)


def register_inception_metrics(fn: Callable[..., dict[str, float]], name: str, description: str, paper: str,
                               reference_impl: str, needs: tuple[str, ...] = ("generator", "reference"),
                               sizes: tuple[int, ...] = (50, 10, 1)) -> None:
    """Register ``fn(ctx, num_gen=, name=, ...)`` once per generated-set size (NVlabs' 50k/10k/1k).

    Args:
        fn: the metric; called with ``num_gen = k * 1000`` and its registry ``name``.
        name: the registry name with ``{k}`` for the size in thousands (``"fid{k}k_full"``).
        description: with ``{k}`` likewise.
        paper: the paper.
        reference_impl: the implementation it follows.
        needs: what the metric needs from the evaluated model.
        sizes: generated-set sizes in thousands.
    """
    import functools

    from genface.metrics.registry import register_metric

    for k in sizes:
        register_metric(name.format(k=k), needs=needs, requires=("inception_weights",),
                        description=description.format(k=k), paper=paper, reference_impl=reference_impl,
                        )(functools.partial(fn, num_gen=k * 1000, name=name.format(k=k)))


def check_resolution_match(gen: torch.Tensor, ref: torch.Tensor, metric: str) -> None:
    """Fail loudly when generated and reference images differ in size."""
    if gen.shape[1:] != ref.shape[1:]:
        raise ValueError(
            f"{metric}: generated images are {tuple(gen.shape[1:])} but reference images are "
            f"{tuple(ref.shape[1:])}; resize one of them first"
        )
