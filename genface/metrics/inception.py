"""Inception-v3 pool3 / logits features of the TF "2015-12-05" graph, loaded from a local file.

The network is torch-fidelity's ``FeatureExtractorInceptionV3`` (the PyTorch port of the
TensorFlow graph used by the original FID, IS and KID code, with TF1-compatible bilinear
resize to 299x299); torchmetrics' ``FrechetInceptionDistance`` wraps the same class. Its
weights, ``weights-inception-2015-12-05-6726825d.pth`` (torch-fidelity release v0.2.0), are
never downloaded here: they are looked up in this order

1. the ``inception_weights=`` argument (a file path);
2. the environment variable ``GENFACE_INCEPTION_WEIGHTS`` (a file path);
3. ``<cache dir>/weights/weights-inception-2015-12-05-6726825d.pth``
   (cache dir = ``$GENFACE_CACHE`` or ``~/.cache/genface/metrics``);
4. ``~/.cache/torch/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth`` (where
   torch-fidelity and torchmetrics put it when they download it).

pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` is accepted at 3 and 4 as well.
torchvision's ``inception_v3_google`` weights are a different network and are refused by the
strict state-dict load.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from genface.metrics.common import cache_dir as _cache_dir
from genface.metrics.registry import register_resource_check
from genface.utils import require

WEIGHTS_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
PYTORCH_FID_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
ENV_WEIGHTS = "GENFACE_INCEPTION_WEIGHTS"
WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + WEIGHTS_FILENAME
)


def candidate_paths(path: str | Path | None = None, cache: str | Path | None = None) -> list[Path]:
    """Where :func:`find_inception_weights` looks, in order."""
    if path is not None:
        return [Path(path).expanduser()]
    if os.environ.get(ENV_WEIGHTS):
        return [Path(os.environ[ENV_WEIGHTS]).expanduser()]
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    out = []
    for folder in (_cache_dir(cache) / "weights", hub):
        out += [folder / WEIGHTS_FILENAME, folder / PYTORCH_FID_FILENAME]
    return out


def find_inception_weights(path: str | Path | None = None, cache: str | Path | None = None) -> Path:
    """The Inception weights file; ``FileNotFoundError`` saying which file and where to put it.

    Args:
        path: explicit file; ``None`` = ``$GENFACE_INCEPTION_WEIGHTS`` or the cache folders.
        cache: the metric cache folder, see :func:`genface.metrics.common.cache_dir`.
    """
    cands = candidate_paths(path, cache)
    for c in cands:
        if c.is_file():
            return c
    raise FileNotFoundError(
        f"Inception-v3 weights not found: the file {WEIGHTS_FILENAME} (torch-fidelity's port of "
        "the TF 2015-12-05 graph, the one every published FID uses) is missing. Looked at: "
        + ", ".join(str(c) for c in cands)
        + f". Nothing is downloaded at run time: fetch it yourself from {WEIGHTS_URL} and put it "
        f"at {_cache_dir(cache) / 'weights' / WEIGHTS_FILENAME}, or pass inception_weights=PATH, "
        f"or set {ENV_WEIGHTS}=PATH."
    )


def _inception_check(inception_weights: str | None = None, cache_dir: str | None = None, **_) -> str | None:
    try:
        find_inception_weights(inception_weights, cache_dir)
    except FileNotFoundError as e:
        return str(e)
    try:
        require("torch_fidelity", "metrics", feature="the Inception-v3 metrics")
    except ImportError as e:
        return str(e)
    return None


class InceptionFeatures(torch.nn.Module):
    """Inception-v3 (TF 2015-12-05) features of ``uint8`` images ``(N, 3, H, W)``.

    Returns ``{"pool": (N, 2048), "logits": (N, 1008)}``: pool3 features (FID, KID,
    precision/recall) and the unbiased logits (Inception Score, as torch-fidelity).

    Args:
        weights: weights file, see :func:`find_inception_weights`; ``None`` = look it up.
        cache: the metric cache folder (for the lookup).
    """

    def __init__(self, weights: str | Path | None = None, cache: str | Path | None = None):
        super().__init__()
        FeatureExtractorInceptionV3 = require(
            "torch_fidelity.feature_extractor_inceptionv3", "metrics",
            feature="the Inception-v3 metrics").FeatureExtractorInceptionV3

        path = find_inception_weights(weights, cache)
        # Refuse anything but plain tensors before torch-fidelity's own (non weights_only) load.
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "fc.weight" not in state:
            raise ValueError(f"{path} is not an Inception-v3 state dict (no 'fc.weight')")
        if tuple(state["fc.weight"].shape) != (1008, 2048):
            raise ValueError(
                f"{path}: fc is {tuple(state['fc.weight'].shape)}, expected (1008, 2048): this is "
                "not the TF 2015-12-05 Inception (torchvision's inception_v3 has 1000 classes)"
            )
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        self.weights_path = path
        self.cache_name = f"inception2015-{digest.hexdigest()[:8]}"
        self.net = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(path)
        )

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        pool, logits = self.net(images)
        return {"pool": pool, "logits": logits}


_LOADED: dict[tuple, InceptionFeatures] = {}


def inception_extractor(
    weights: str | Path | None = None,
    device: torch.device | str = "cpu",
    cache: str | Path | None = None,
) -> InceptionFeatures:
    """A loaded :class:`InceptionFeatures`, reused across calls for the same file and device."""
    path = find_inception_weights(weights, cache)
    key = (str(path.resolve()), path.stat().st_mtime_ns, str(device))
    if key not in _LOADED:
        _LOADED.clear()  # keep at most one network in memory
        _LOADED[key] = InceptionFeatures(path).to(device).eval()
    return _LOADED[key]


register_resource_check("inception_weights", _inception_check)
