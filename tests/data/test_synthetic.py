"""Tests of the procedural synthetic face dataset (genface.data.synthetic)."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch

import genface.data.synthetic as synthetic
from genface.data.synthetic import (
    HAIR_STYLES,
    ExpressionPose,
    IdentityParams,
    SyntheticFaces,
    encode_factors,
    factor_names,
    render_faces,
    sample_expression_pose,
    sample_identity,
)


def small(tmp_path=None, **kw) -> SyntheticFaces:
    args = dict(num_images=24, num_identities=6, resolution=32, seed=0, cache=False)
    args.update(kw)
    if tmp_path is not None:
        args.update(cache=True, cache_dir=tmp_path)
    return SyntheticFaces(**args)


def test_same_seed_same_images_different_seed_different():
    a, b, c = small(seed=3), small(seed=3), small(seed=4)
    assert torch.equal(a.images, b.images)
    assert torch.equal(a.factors, b.factors)
    assert not torch.equal(a.images, c.images)
    assert a.identity_params(2) == sample_identity(3, 2)
    assert a.identity_params(2) != c.identity_params(2)
    assert a.expression_pose(7) == sample_expression_pose(3, 7)


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_sample_contract(resolution):
    ds = small(num_images=6, num_identities=3, resolution=resolution)
    assert len(ds) == 6
    assert ds.images.shape == (6, 3, resolution, resolution) and ds.images.dtype == torch.uint8
    assert ds.identities.dtype == torch.int64 and ds.identities.tolist() == [0, 1, 2, 0, 1, 2]
    sample = ds[4]
    img = sample["image"]
    assert img.shape == (3, resolution, resolution) and img.dtype == torch.float32
    assert img.min() >= -1.0 and img.max() <= 1.0
    assert img.std() > 0.1  # a picture, not a flat colour
    assert sample["identity"].dtype == torch.int64 and sample["identity"].dim() == 0
    assert int(sample["identity"]) == 1
    factors = sample["factors"]
    assert factors.dtype == torch.float32 and factors.shape == (len(ds.factor_names),)
    assert factors.abs().max() <= 1.0 + 1e-6
    assert ds.factor_names == factor_names()
    assert len(set(ds.factor_names)) == len(ds.factor_names)


def test_factor_layout():
    names = factor_names()
    idp, ep = sample_identity(0, 1), sample_expression_pose(0, 1)
    f = encode_factors(idp, ep)
    assert f.shape == (len(names),)
    onehot = [k for k, n in enumerate(names) if n.startswith("hair_style=")]
    assert [names[k].split("=")[1] for k in onehot] == list(HAIR_STYLES)
    assert f[onehot].sum() == 1 and f[onehot[idp.hair_style]] == 1
    # identity factors come first, then the per-image ones, each in declaration order
    n_id = len(dataclasses.fields(IdentityParams)) - 1 + len(HAIR_STYLES)
    assert names[n_id:] == [fl.name for fl in dataclasses.fields(ExpressionPose)]
    yaw = names.index("yaw")
    lo, hi = ExpressionPose.__dataclass_fields__["yaw"].metadata["range"]
    assert f[yaw].item() == pytest.approx(2 * (ep.yaw - lo) / (hi - lo) - 1, abs=1e-6)


def test_render_reproduces_cached_images_exactly(tmp_path):
    ds = small(tmp_path, num_images=20, num_identities=5, resolution=64)
    for i in range(len(ds)):
        assert torch.equal(ds.render(ds.identities[i], ds.expression_pose(i)), ds.images[i]), i
    # by IdentityParams too, and batched in another order
    idx = [13, 2, 7]
    batch = ds.render_batch([ds.identity_params(int(ds.identities[i])) for i in idx],
                            [ds.expression_pose(i) for i in idx])
    assert torch.equal(batch, ds.images[idx])


def test_windowed_features_match_full_frame_reference():
    # the eyes, nose, mouth, ears, cheeks and body are drawn on per-image windows; the
    # windows must hold every pixel those layers touch, including at extreme factors
    ids = [sample_identity(11, k) for k in range(12)]
    eps = [sample_expression_pose(11, k) for k in range(12)]
    extremes = {}
    for f in dataclasses.fields(ExpressionPose):
        lo, hi = f.metadata["range"]
        extremes[f.name] = hi if f.name in ("smile", "mouth_open", "eye_open", "brow_raise") else lo
    eps[0] = ExpressionPose(**extremes)
    eps[1] = ExpressionPose.neutral(smile=-0.4, yaw=0.5, roll=0.25, scale=1.1, offset_x=0.1)
    for resolution in (32, 96):
        fast = render_faces(ids, eps, resolution)
        reference = render_faces(ids, eps, resolution, full_frame=True, batch_size=5)
        assert torch.equal(fast, reference)


def test_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("GENFACE_CACHE", str(tmp_path))
    ds = SyntheticFaces(num_images=10, num_identities=3, resolution=32, seed=5)
    path = ds.cache_path
    assert path.parent == tmp_path / "synthetic" and path.is_file()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left over
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        assert fh.metadata()["synthetic"] == "true"

    def no_render(*args, **kwargs):
        raise AssertionError("the second construction must load the cache")

    monkeypatch.setattr(synthetic, "render_faces", no_render)
    again = SyntheticFaces(num_images=10, num_identities=3, resolution=32, seed=5)
    assert torch.equal(again.images, ds.images)
    assert torch.equal(again.factors, ds.factors)
    # another argument is another cache entry (it must render, so it fails here)
    with pytest.raises(AssertionError, match="load the cache"):
        SyntheticFaces(num_images=10, num_identities=3, resolution=32, seed=6)
    # an explicit cache_dir wins over the environment variable
    monkeypatch.setattr(synthetic, "render_faces", render_faces)
    other = SyntheticFaces(num_images=4, num_identities=2, resolution=32, cache_dir=tmp_path / "x")
    assert other.cache_path.parent == tmp_path / "x"


def test_corrupt_cache_is_rerendered(tmp_path):
    ds = small(tmp_path, num_images=4, num_identities=2)
    ds.cache_path.write_bytes(b"not a safetensors file")
    with pytest.warns(UserWarning, match="unreadable cache"):
        again = small(tmp_path, num_images=4, num_identities=2)
    assert torch.equal(again.images, ds.images)


def test_same_identity_more_similar_than_other_identities():
    # neutral pose, light and background; only the expression changes within an identity
    expressions = [
        ExpressionPose.neutral(),
        ExpressionPose.neutral(smile=0.8, mouth_open=0.6),
        ExpressionPose.neutral(brow_raise=1.0, eye_open=1.1, gaze_x=0.6),
        ExpressionPose.neutral(smile=-0.3, brow_raise=-0.8, eye_open=0.4, gaze_y=0.5),
    ]
    n_id = 8
    ids = [sample_identity(2, k) for k in range(n_id) for _ in expressions]
    imgs = render_faces(ids, expressions * n_id, 64).float().flatten(1) / 255.0
    dist = torch.cdist(imgs, imgs)
    label = torch.arange(n_id).repeat_interleave(len(expressions))
    same = label[:, None] == label[None, :]
    off_diag = ~torch.eye(len(label), dtype=torch.bool)
    intra = dist[same & off_diag].mean()
    inter = dist[~same].mean()
    assert intra < 0.5 * inter
    # and each image's nearest neighbour is an image of the same identity
    nearest = dist.masked_fill(~off_diag, float("inf")).argmin(1)
    assert (label[nearest] == label).float().mean() >= 0.9


def _centroid(mask: torch.Tensor) -> torch.Tensor:
    h, w = mask.shape
    ys = torch.arange(h, dtype=torch.float32)[:, None]
    xs = torch.arange(w, dtype=torch.float32)[None, :]
    m = mask.sum()
    return torch.stack([(mask * ys).sum() / m, (mask * xs).sum() / m])


def test_swap_ground_truth_keeps_pose_and_changes_identity():
    ds = small(num_images=12, num_identities=4, resolution=64)
    i = 5
    src = int(ds.identities[i])
    j = (src + 1) % ds.num_identities
    swap = ds.render(j, ds.expression_pose(i))
    assert swap.shape == ds.images[i].shape and swap.dtype == torch.uint8
    assert (swap.float() - ds.images[i].float()).abs().mean() > 5  # another face
    # same background (corner pixels) and the same face position, from the face masks
    assert torch.equal(swap[:, :4, :4], ds.images[i][:, :4, :4])
    ep_i, ep_other = ds.expression_pose(i), ds.expression_pose(i + 1)
    moved = dataclasses.replace(ep_i, offset_x=ep_i.offset_x + 0.2)
    _, masks = ds.render_batch([src, j, j], [ep_i, ep_i, moved], return_mask=True)
    assert masks.shape == (3, 64, 64) and 0 <= masks.min() and masks.max() <= 1
    c_src, c_swap, c_moved = (_centroid(m) for m in masks)
    assert (c_src - c_swap).norm() < 2.5  # pixels
    assert (c_moved - c_swap)[1] == pytest.approx(0.2 * 32, abs=1.0)  # offset in canvas units
    assert ep_other != ep_i


def test_render_other_resolution_and_identity_params():
    ds = small(num_images=3, num_identities=3)
    idp = dataclasses.replace(ds.identity_params(0), hair_style=HAIR_STYLES.index("long"))
    img = ds.render(idp, ExpressionPose.neutral(), resolution=48)
    assert img.shape == (3, 48, 48) and img.dtype == torch.uint8


def test_invalid_arguments():
    with pytest.raises(ValueError, match="resolution"):
        SyntheticFaces(num_images=2, num_identities=1, resolution=8, cache=False)
    with pytest.raises(ValueError, match="num_images"):
        SyntheticFaces(num_images=0, cache=False)
    ds = small(num_images=2, num_identities=2)
    with pytest.raises(IndexError, match="identity 5"):
        ds.identity_params(5)
    with pytest.raises(ValueError, match="expression/poses"):
        render_faces([ds.identity_params(0)], [], 32)
    with pytest.raises(ValueError, match="hair_style"):
        ds.render(dataclasses.replace(ds.identity_params(0), hair_style=99), ExpressionPose.neutral())


def test_works_with_a_dataloader():
    ds = small(num_images=8, num_identities=4)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 32, 32)
    assert batch["identity"].tolist() == [0, 1, 2, 3]
    assert batch["factors"].shape == (4, len(ds.factor_names))


@pytest.mark.slow
def test_default_size_renders(capsys):
    t0 = time.perf_counter()
    ds = SyntheticFaces(cache=False)  # 10k images of 100 identities at 64 px
    elapsed = time.perf_counter() - t0
    assert ds.images.shape == (10000, 3, 64, 64)
    assert torch.bincount(ds.identities).tolist() == [100] * 100
    with capsys.disabled():
        print(f"\nSyntheticFaces(10000 x 64px) rendered in {elapsed:.1f} s")
