"""Metric validity (Heusel et al. 2017 protocol) at small sizes: disturbances, the synth-net
recipe (version 1 fails "faces beat no faces", version 2 passes) and fd_dlib's miss counting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genface.metrics import disturb, validity
from genface.metrics import synth_net as sn

RES = 32
NUM = 200
LEVELS = {"gaussian_noise": (0.1, 0.4), "gaussian_blur": (1.0, 3.0), "black_rectangles": (0.15, 0.25),
          "swirl": (2.0, 4.0), "salt_and_pepper": (0.1, 0.3), "contaminate_blobs": (0.25, 0.75),
          "contaminate_patches": (0.25, 0.75), "contaminate_noise": (0.25, 0.75)}


def _faces(n: int, seed: int) -> torch.Tensor:
    from genface.data.synthetic import SyntheticFaces

    ds = SyntheticFaces(num_images=n, num_identities=50, resolution=RES, seed=seed)
    return ds.images.float() / 127.5 - 1


def test_disturbances_deterministic_in_range_and_graded():
    x = _faces(16, 0)
    for name, (fn, levels) in disturb.DISTURBANCES.items():
        a = fn(x, levels[-1], torch.Generator().manual_seed(1))
        b = fn(x, levels[-1], torch.Generator().manual_seed(1))
        assert a.shape == x.shape and torch.equal(a, b), name
        assert a.min() >= -1 and a.max() <= 1, name
        dist = [(fn(x, lv, torch.Generator().manual_seed(1)) - x).abs().mean().item() for lv in levels]
        assert 0 < dist[0] and dist[-1] > dist[0], (name, dist)  # every level changes pixels, more at the top
    blurred = disturb.gaussian_blur(x, 2.0)
    hf = lambda t: (t[..., 1:] - t[..., :-1]).abs().mean()  # noqa: E731
    assert hf(blurred) < 0.7 * hf(x)
    c = disturb.contaminate(x, 0.25, torch.Generator().manual_seed(0), "noise")
    assert (c != x).flatten(1).any(1).sum() == 4  # exactly a quarter of the 16 images replaced
    g = torch.Generator().manual_seed(0)
    for kind in disturb.NON_FACE_KINDS:
        nf = disturb.non_faces(kind, 8, RES, g, x)
        assert nf.shape == (8, 3, RES, RES) and nf.min() >= -1 and nf.max() <= 1
    with pytest.raises(ValueError, match="valid"):
        disturb.non_faces("clouds", 2, RES, g, x)


@pytest.fixture(scope="module")
def suite_data():
    """Reference 1000, held-out 200 and a second real 200 (SyntheticFaces seed 0); a training set
    of another seed; small nets of the version 1 and version 2 recipes."""
    x = _faces(1400, 0)
    from genface.data.synthetic import SyntheticFaces

    train_ds = SyntheticFaces(num_images=1200, num_identities=50, resolution=RES, seed=sn.TRAIN_SEED)
    small = dict(num_images=1200, epochs=6, batch_size=64)
    v1 = sn.train_synth_net(train_ds, sn.SynthNetTrainConfig(**small, negatives=0.0, augment=0.0))
    v2 = sn.train_synth_net(train_ds, sn.SynthNetTrainConfig(**small))
    return x[:1000], x[1000:1200], x[1200:1400], v1, v2


def _run_suite(net, ref, held, real_b, tmp_path):
    path = sn.synth_net_path(RES, tmp_path)
    sn.save_synth_net(net, path)
    sets = validity.build_sets(held, real_b, NUM, levels=LEVELS)
    res = validity.evaluate(["fsd_synth1k"], sets, ref, cache_dir=tmp_path, reference_key="ref")
    return {c.check: c for c in validity.check(res, sets, "fsd_synth1k")}, res


def test_version1_feature_space_ranks_no_face_above_faces(suite_data, tmp_path):
    ref, held, real_b, v1, _ = suite_data
    checks, res = _run_suite(v1, ref, held, real_b, tmp_path)
    assert not checks["faces beat no faces"].passed, checks["faces beat no faces"].detail
    assert "fsd_synth1k/face_rate" not in res["real"]  # no face head in version 1


def test_version2_feature_space_passes_the_suite(suite_data, tmp_path):
    ref, held, real_b, _, v2 = suite_data
    checks, res = _run_suite(v2, ref, held, real_b, tmp_path)
    failed = [f"{c.check}: {c.detail}" for c in checks.values() if not c.passed]
    assert not failed, failed
    # the face-ness score beside it: real faces read as faces, pure non-face sets do not
    assert res["real"]["fsd_synth1k/face_rate"] > 0.9
    assert max(res[f"nonface_{k}"]["fsd_synth1k/face_rate"] for k in disturb.NON_FACE_KINDS) < 0.3
    bar = validity.anchor_score("fsd_synth1k", ref, held[:NUM], "gaussian_blur", 3.0, cache_dir=tmp_path,
                                reference_key="ref")
    assert bar["fsd_synth1k"] == pytest.approx(res["gaussian_blur@3"]["fsd_synth1k"])


def test_check_flags_a_non_monotone_metric():
    levels = {k: v[:2] for k, (_, v) in disturb.DISTURBANCES.items()}
    sets = validity.build_sets(torch.zeros(4, 3, RES, RES), torch.zeros(4, 3, RES, RES), 4, levels=levels)
    res = {s.name: {"m": 1.0 + s.level} for s in sets}
    res["real"]["m"] = res["real_b"]["m"] = 0.0
    for k in disturb.NON_FACE_KINDS:
        res[f"nonface_{k}"]["m"] = 100.0
    assert all(c.passed for c in validity.check(res, sets, "m"))
    res["gaussian_blur@1"]["m"] = 1.2  # blur 1 scores better than blur 0.5 (1.5)
    res["swirl@2"]["m"] = 200.0  # a swirled face worse than no face
    bad = {c.check for c in validity.check(res, sets, "m") if not c.passed}
    assert bad == {"monotone gaussian_blur", "faces beat no faces"}


class _FakeEmbedder:
    """Stands in for dlib: embeds an image as its first 128 pixel values; NaN ("no face") when dark."""

    cache_name = "fake-dlib"

    def __call__(self, images):
        emb = images.flatten(1)[:, :128].float() / 255
        emb[images.float().mean((1, 2, 3)) < 0.2 * 255] = float("nan")
        return {"emb": emb}


def test_fd_dlib_counts_misses_and_is_never_nan(monkeypatch, tmp_path):
    from genface.metrics import EvalContext, face_embed

    monkeypatch.setitem(face_embed._EMBEDDERS, "hog", _FakeEmbedder())
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(64, 3, 8, 8, generator=g) * 1.2 - 0.2  # bright: all "detected"
    faces = torch.rand(64, 3, 8, 8, generator=g) * 1.2 - 0.2
    dark = torch.full((64, 3, 8, 8), -0.9)  # never "detected"

    def run(share_missed: float) -> dict:
        k = int(share_missed * 64)
        gen = torch.cat([dark[:k], faces[k:]])
        ctx = EvalContext(generator_fn=lambda n, seed: gen[seed * 64: seed * 64 + n], reference=ref,
                          batch_size=64, cache_dir=tmp_path, reference_key="r")
        return {**face_embed._fd_dlib(ctx, 64, "fd"), **face_embed._kid_dlib(ctx, 64, "kid"),
                **face_embed._pr_dlib(ctx, 64, "pr")}

    out = [run(q) for q in (0.0, 0.25, 0.5, 1.0)]
    fd = [o["fd"] for o in out]
    assert all(np.isfinite(fd)) and fd == sorted(fd) and fd[-1] > 10 * max(fd[0], 1e-6), fd
    assert [o["fd/gen_detected"] for o in out] == [1.0, 0.75, 0.5, 0.0]
    assert np.isfinite(out[-1]["kid"]) and out[-1]["kid"] > out[0]["kid"]
    assert out[-1]["pr/precision"] < out[0]["pr/precision"]


def test_the_feature_net_trains_inside_no_grad_and_leaves_the_rng_alone():
    """It is trained on first use, e.g. inside genface-compare's learning-curve callback, which
    evaluates under no_grad (a fresh machine's demo failed with "element 0 of tensors does not
    require grad"); the run's RNG must not move either."""
    from genface.data.synthetic import SyntheticFaces

    ds = SyntheticFaces(num_images=64, num_identities=4, resolution=RES, seed=sn.TRAIN_SEED)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with torch.no_grad():
        net = sn.train_synth_net(ds, sn.SynthNetTrainConfig(num_images=64, num_identities=4, epochs=1))
    assert torch.equal(torch.rand(3), expected)
    assert all(torch.isfinite(p).all() for p in net.parameters())
