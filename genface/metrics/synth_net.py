"""A small CNN trained by genface on SyntheticFaces factor labels, used as a feature space.

Nothing pretrained can be downloaded here, so genface trains its own feature network for
the Fréchet SyntheticFaces Distance (:mod:`genface.metrics.fsd`) and for PPL's offline
distance: a strided CNN that, from a face of :class:`genface.data.SyntheticFaces`, regresses
the normalised factor vector (identity shape and colours, expression, pose, lighting) and
classifies the identity. Its pooled penultimate activations (``feature_dim``) are the
features. The network is trained once per resolution on a SyntheticFaces set disjoint from
the default one (seed :data:`TRAIN_SEED`), deterministically, and saved as safetensors under
``<cache dir>/synthnet/`` for reuse.

Values in this space are only comparable with values in the same space (same resolution and
:data:`RECIPE_VERSION`); they are not FIDs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genface.metrics.common import atomic_save_tensors, cache_dir

#: Bumped when the architecture or the training recipe changes (old files are not reused).
RECIPE_VERSION = 2
#: Seed of the SyntheticFaces set the net trains on (not the default seed 0 of the data).
TRAIN_SEED = 1_000_003


@dataclasses.dataclass
class SynthNetConfig:
    """Architecture of :class:`SynthFeatureNet`."""

    resolution: int = 64  # input height = width; stride-2 convs halve it down to 4 x 4
    num_factors: int = 47  # length of SyntheticFaces' "factors" vector (regression head)
    num_identities: int = 100  # identities of the training set (classification head)
    base_channels: int = 16  # channels after the first conv; doubled per level up to max_channels
    max_channels: int = 128  # channel cap
    feature_dim: int = 128  # pooled feature size used by the metrics
    face_head: bool = True  # a face / non-face logit head (recipe >= 2); False = version 1 net


@dataclasses.dataclass
class SynthNetTrainConfig:
    """Training recipe of the feature net (fixed; part of the cache key via RECIPE_VERSION)."""

    num_images: int = 3000  # SyntheticFaces images rendered for training
    num_identities: int = 100  # identities in that set
    epochs: int = 8  # passes over the set
    batch_size: int = 64  # images per step
    lr: float = 2e-3  # Adam learning rate, cosine-decayed to 0
    identity_weight: float = 0.5  # weight of the identity cross-entropy next to the factor MSE
    negatives: float = 0.5  # non-face images per face image in each batch (0 = none, version 1)
    face_weight: float = 1.0  # weight of the face / non-face cross-entropy
    augment: float = 0.5  # share of the face images degraded (blur, noise, squares, colour); 0 = off
    seed: int = 0  # torch seed of initialisation, shuffling, augmentation and negatives


class SynthFeatureNet(nn.Module):
    """Strided CNN: ``(N, 3, R, R)`` in ``[-1, 1]`` -> features ``(N, feature_dim)``.

    Args:
        config: architecture; ``None`` uses :class:`SynthNetConfig` defaults.
    """

    def __init__(self, config: SynthNetConfig | None = None):
        super().__init__()
        self.config = cfg = config or SynthNetConfig()
        r = cfg.resolution
        if r < 8 or r & (r - 1):
            raise ValueError(f"resolution must be a power of two >= 8, got {r}")
        layers: list[nn.Module] = []
        c_in, c = 3, cfg.base_channels
        while r > 4:
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.BatchNorm2d(c), nn.LeakyReLU(0.2)]
            c_in, c, r = c, min(2 * c, cfg.max_channels), r // 2
        layers += [nn.Conv2d(c_in, cfg.feature_dim, 3, padding=1), nn.LeakyReLU(0.2)]
        self.trunk = nn.Sequential(*layers)
        self.factor_head = nn.Linear(cfg.feature_dim, cfg.num_factors)
        self.identity_head = nn.Linear(cfg.feature_dim, cfg.num_identities)
        self.face_head = nn.Linear(cfg.feature_dim, 1) if cfg.face_head else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(N, feature_dim)`` of float images ``(N, 3, R, R)`` in ``[-1, 1]``."""
        r = self.config.resolution
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, r, r):
            raise ValueError(f"SynthFeatureNet({r} px) expects (N, 3, {r}, {r}), got {tuple(x.shape)}")
        return self.trunk(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(factors (N, num_factors), identity logits (N, num_identities))``."""
        f = self.features(x)
        return self.factor_head(f), self.identity_head(f)

    def face_logit(self, features: torch.Tensor) -> torch.Tensor:
        """Logit ``(N,)`` that the image shows a face, from :meth:`features` (needs ``face_head``)."""
        if self.face_head is None:
            raise ValueError("this net has no face head (config.face_head=False)")
        return self.face_head(features)[:, 0]


def _stack(dataset: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    items = [dataset[i] for i in range(len(dataset))]
    return (
        torch.stack([it["image"] for it in items]).float(),
        torch.stack([torch.as_tensor(it["identity"]) for it in items]).long(),
        torch.stack([torch.as_tensor(it["factors"]) for it in items]).float(),
    )


def augment_faces(x: torch.Tensor, share: float, g: torch.Generator) -> torch.Tensor:
    """Degrade a random ``share`` of face images ``(B, 3, R, R)``, in chunks of 8 sharing one draw.

    Each chunk gets one of: Gaussian blur (sigma U(0, 2.5) px at 32 px), Gaussian noise (sd
    U(0, 0.3)), one to five black squares (side U(0.05, 0.25)), or a brightness / contrast /
    saturation change; faces stay faces (label 1) and keep their factor targets.
    """
    from genface.metrics import disturb

    y = x.clone()
    for start in range(0, len(x), 8):
        if float(torch.rand((), generator=g)) >= share:
            continue
        c = y[start:start + 8]
        kind, u = int(torch.randint(0, 4, (), generator=g)), float(torch.rand((), generator=g))
        if kind == 0:
            c = disturb.gaussian_blur(c, 1.5 * u)
        elif kind == 1:
            c = disturb.gaussian_noise(c, 0.15 * u, g)
        elif kind == 2:
            c = disturb.black_rectangles(c, 0.05 + 0.2 * u, g, count=1 + int(torch.randint(0, 5, (), generator=g)))
        else:
            v = torch.rand(3, generator=g) * 2 - 1
            grey = c.mean(1, keepdim=True)
            c = grey + (c - grey) * (1 + 0.4 * v[0])  # saturation
            c = (c - c.mean((1, 2, 3), keepdim=True)) * (1 + 0.3 * v[1]) + c.mean((1, 2, 3), keepdim=True)
            c = (c + 0.3 * v[2]).clamp(-1, 1)
        y[start:start + 8] = c
    return y


def make_negatives(faces: torch.Tensor, num: int, g: torch.Generator) -> torch.Tensor:
    """``num`` non-face training images made from a batch of faces, in equal thirds:

    smooth colour grids (2 to 6 cells per side), faces cut into 2 x 2 or 8 x 8 shuffled
    patches, and Gaussian noise around face colours (sd U(0.1, 0.6), blur U(0, 1.5) px).
    These families differ from the validity suite's held-out non-faces (Gaussian colour
    blobs, 4 x 4 shuffles, white uniform noise).
    """
    from genface.metrics import disturb

    res = faces.shape[-1]
    parts = []
    for i, k in enumerate((num - 2 * (num // 3), num // 3, num // 3)):
        if k == 0:
            continue
        u = float(torch.rand((), generator=g))
        if i == 0:
            parts.append(disturb.colour_grid(k, res, g, faces, cells=2 + int(5 * u)))
        elif i == 1:
            src = faces[torch.randint(0, len(faces), (k,), generator=g)]
            parts.append(disturb.shuffled_patches(src, g, grid=2 if u < 0.5 else min(8, res // 2)))
        else:
            parts.append(disturb.coloured_noise(k, res, g, faces, sd=0.1 + 0.5 * u,
                                                sigma=1.5 * float(torch.rand((), generator=g))))
    return torch.cat(parts)


def train_synth_net(dataset: Any, train: SynthNetTrainConfig | None = None, log: bool = False) -> SynthFeatureNet:
    """Train a :class:`SynthFeatureNet` on a dataset with ``"image"``, ``"identity"``, ``"factors"``.

    The net is trained on first use, which can be inside a training run (a learning-curve
    evaluation, a validation): it trains with gradients on whatever the caller's grad mode
    is, and on a forked RNG, so the run's random stream (and its exact resume) is untouched.

    Args:
        dataset: items as :class:`genface.data.SyntheticFaces` (square, power-of-two size).
        train: recipe; ``None`` = :class:`SynthNetTrainConfig` defaults.
        log: print the loss of each epoch.
    """
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False), torch.enable_grad():
        return _train_synth_net(dataset, train or SynthNetTrainConfig(), log)


def _train_synth_net(dataset: Any, train: SynthNetTrainConfig, log: bool) -> SynthFeatureNet:
    images, identities, factors = _stack(dataset)
    torch.manual_seed(train.seed)
    net = SynthFeatureNet(SynthNetConfig(
        resolution=images.shape[-1], num_factors=factors.shape[1],
        num_identities=int(identities.max()) + 1, face_head=train.negatives > 0,
    ))
    opt = torch.optim.Adam(net.parameters(), lr=train.lr)
    steps = train.epochs * math.ceil(len(images) / train.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(train.seed)
    net.train()
    for epoch in range(train.epochs):
        total = 0.0
        for idx in torch.randperm(len(images), generator=g).split(train.batch_size):
            x = images[idx]
            if train.augment > 0:
                x = augment_faces(x, train.augment, g)
            n_neg = int(round(train.negatives * len(idx)))
            if n_neg:
                x = torch.cat([x, make_negatives(images[idx], n_neg, g)])
            f = net.features(x)
            pos = f[: len(idx)]
            loss = F.mse_loss(net.factor_head(pos), factors[idx]) + \
                train.identity_weight * F.cross_entropy(net.identity_head(pos), identities[idx])
            if n_neg:
                target = torch.cat([torch.ones(len(idx)), torch.zeros(n_neg)])
                loss = loss + train.face_weight * F.binary_cross_entropy_with_logits(net.face_logit(f), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if log:
            print(f"synth net epoch {epoch}: loss {total / len(images):.4f}")
    return net.eval().requires_grad_(False)


def synth_net_path(resolution: int, cache: str | Path | None = None) -> Path:
    """Cache file of the feature net for ``resolution``."""
    return cache_dir(cache) / "synthnet" / f"synthnet_r{resolution}_v{RECIPE_VERSION}.safetensors"


def save_synth_net(net: SynthFeatureNet, path: Path) -> Path:
    """Save weights + config (in the safetensors metadata), atomically."""
    return atomic_save_tensors(
        net.state_dict(), path,
        {"config": json.dumps(dataclasses.asdict(net.config)), "recipe_version": str(RECIPE_VERSION)},
    )


def load_synth_net(path: Path) -> SynthFeatureNet:
    """Load a net written by :func:`save_synth_net`."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    net = SynthFeatureNet(SynthNetConfig(**json.loads(meta["config"])))
    net.load_state_dict(load_file(str(path)))
    return net.eval().requires_grad_(False)


def get_synth_net(resolution: int, cache: str | Path | None = None, dataset: Any = None,
                  log: bool = False) -> SynthFeatureNet:
    """The feature net for ``resolution``: loaded from the cache, else trained and saved.

    Args:
        resolution: image size (power of two, 8 to 256).
        cache: the metric cache folder, see :func:`genface.metrics.common.cache_dir`.
        dataset: training data; ``None`` renders ``SyntheticFaces(num_images=3000,
            num_identities=100, resolution=resolution, seed=TRAIN_SEED)`` (SyntheticFaces
            caches its render too). Only used when no cached net exists.
        log: print training progress.
    """
    path = synth_net_path(resolution, cache)
    if path.is_file():
        return load_synth_net(path)
    if dataset is None:
        from genface.data.synthetic import SyntheticFaces

        t = SynthNetTrainConfig()
        dataset = SyntheticFaces(num_images=t.num_images, num_identities=t.num_identities,
                                 resolution=resolution, seed=TRAIN_SEED)
    net = train_synth_net(dataset, log=log)
    if net.config.resolution != resolution:
        raise ValueError(f"training dataset is {net.config.resolution} px, asked for {resolution}")
    save_synth_net(net, path)
    return net


class SynthNetFeatures:
    """Feature extractor (see :class:`genface.metrics.common.FeatureExtractor`) of a synth net.

    Args:
        net: the trained network.
        device: where it runs.
    """

    def __init__(self, net: SynthFeatureNet, device: torch.device | str = "cpu"):
        self.net = net.to(device)
        digest = hashlib.sha256()
        for k, v in sorted(net.state_dict().items()):
            digest.update(k.encode())
            digest.update(v.detach().cpu().contiguous().numpy().tobytes())
        self.cache_name = f"synthnet-r{net.config.resolution}-{digest.hexdigest()[:8]}"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = images.float() / 127.5 - 1.0 if images.dtype == torch.uint8 else images
        f = self.net.features(x)
        if self.net.face_head is None:
            return {"feat": f}
        return {"feat": f, "face_logit": self.net.face_logit(f)[:, None]}
