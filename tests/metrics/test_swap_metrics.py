"""Swap metrics (genface.metrics.swap), the retrieval fix, and the swapper contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genface.metrics import compute_metrics, get_metric, list_metrics
from genface.metrics.face_embed import dlib_unavailable_reason, identity_retrieval_top1
from genface.metrics.registry import NEEDS
from genface.metrics.swap import SWAP_METRICS, SwapEvalSet, landmark_error, temporal_consistency

needs_dlib = pytest.mark.skipif(dlib_unavailable_reason() is not None,
                                reason=f"needs dlib: {dlib_unavailable_reason()}")


def test_retrieval_ignores_nan_gallery_rows():
    # one gallery face the detector missed (NaN row) used to make every query a miss
    gallery = np.eye(4, 8)
    gallery[3] = np.nan
    query = np.eye(4, 8)[:3] + 0.05
    assert identity_retrieval_top1(query, gallery, [0, 1, 2], [0, 1, 2, 3]) == 1.0
    query[1] = np.nan  # a query without a face still counts as a miss
    assert identity_retrieval_top1(query, gallery, [0, 1, 2], [0, 1, 2, 3]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="no gallery embedding"):
        identity_retrieval_top1(query, np.full((2, 8), np.nan), [0, 1, 2], [0, 1])


def test_swap_metrics_registered_with_the_swapper_need():
    assert "swapper" in NEEDS
    assert set(SWAP_METRICS) <= set(list_metrics(available={"swapper"}))
    assert not set(SWAP_METRICS) & set(list_metrics(available={"generator", "reference"}))
    for name in SWAP_METRICS:
        assert get_metric(name).needs == ("swapper",)
    with pytest.raises(ValueError, match="swap_fn"):
        compute_metrics(["swap_temporal"])


def test_landmark_error_and_temporal_consistency():
    rng = np.random.default_rng(0)
    lm = rng.uniform(0, 64, (2, 68, 2))
    lm[:, 36], lm[:, 45] = (10, 30), (50, 30)  # inter-ocular distance 40
    assert landmark_error(lm, lm + [3, 4]) == pytest.approx([5 / 40, 5 / 40])
    assert np.isnan(landmark_error(lm, np.full_like(lm, np.nan))).all()
    torch.manual_seed(0)
    x = torch.rand(1, 3, 8, 8) + 0.05 * torch.arange(6.0)[:, None, None, None]  # a slow fade
    assert temporal_consistency(x, x)["ratio"] == pytest.approx(1.0)
    flicker = x + 0.3 * torch.randn_like(x)
    assert temporal_consistency(x, flicker)["ratio"] > 1.5
    still = x[:1].expand_as(x)
    assert temporal_consistency(x, still)["ratio"] == 0


def test_temporal_metric_through_the_registry():
    video = torch.linspace(-0.2, 0.2, 5)[:, None, None, None].expand(5, 3, 8, 8).contiguous()
    data = SwapEvalSet(faces_a=video, faces_b=video, video_a=video)
    same = compute_metrics(["swap_temporal"], swap_fn=lambda x, t: x, swap_data=data)
    assert same["swap_temporal"] == pytest.approx(1.0, abs=0.02)
    noisy = compute_metrics(["swap_temporal"], swap_fn=lambda x, t: (x + 0.5 * torch.randn_like(x)).clamp(-1, 1),
                            swap_data=data)
    assert noisy["swap_temporal"] > 1.5


@pytest.fixture(scope="module")
def synth_swap(tmp_path_factory):
    """A tiny SwapDataModule on SyntheticFaces at 16 px and a 16 px factor net in a temp cache."""
    from genface.data.swap import SwapDataModule
    from genface.data.synthetic import SyntheticFaces
    from genface.metrics import synth_net

    cache = tmp_path_factory.mktemp("metric_cache")
    train = SyntheticFaces(num_images=800, num_identities=40, resolution=16, seed=5, cache=False)
    synth_net.get_synth_net(16, cache=cache, dataset=train)
    dm = SwapDataModule(dataset=lambda: SyntheticFaces(num_images=40, num_identities=2, resolution=16,
                                                        seed=0, cache=False),
                        resolution=16, batch_size=4, val_size=2)
    dm.setup()
    return dm, cache


@pytest.mark.slow
def test_synthetic_factor_metrics_tell_a_swap_from_no_swap(synth_swap):
    dm, cache = synth_swap
    data = dm.swap_eval_data(24)
    assert data.truth_a_as_b.shape == data.faces_a.shape == (24, 3, 16, 16)
    truth = {0: data.truth_b_as_a, 1: data.truth_a_as_b}

    def oracle(x, target):  # the exact swap of the eval faces
        return truth[target]

    got = compute_metrics(["swap_synth_factors", "swap_synth_gt"], swap_fn=oracle, swap_data=data, cache_dir=cache, batch_size=64)
    none = compute_metrics(["swap_synth_factors", "swap_synth_gt"], swap_fn=lambda x, t: x, swap_data=data, cache_dir=cache,
                           batch_size=64)
    assert got["swap_synth_gt"] == pytest.approx(0.0, abs=1e-6)
    assert none["swap_synth_gt"] == pytest.approx(none["swap_synth_gt/noswap_mae"], rel=1e-3)
    # a weak 16 px factor net (trained in seconds) still tells the exact swap from no swap
    assert got["swap_synth_factors"] > 0.5 > none["swap_synth_factors"], (got, none)
    assert got["swap_synth_factors"] - none["swap_synth_factors"] > 0.3
    # the oracle keeps A's expression and pose: its attribute error is the regressor's floor
    assert got["swap_synth_factors/attr_error"] == pytest.approx(got["swap_synth_factors/attr_error_truth"], rel=0.2)


@needs_dlib
@pytest.mark.realdata
@pytest.mark.slow
def test_dlib_swap_metrics_on_orl(tmp_path):
    """On real ORL faces: a swapper returning real photos of B is retrieved as B and detected;
    no swap is retrieved as A (identity fully leaked); landmark error of B's photos > 0."""
    import os
    from pathlib import Path

    from genface.data.folder import FolderFaces
    from genface.data.swap import SwapDataModule
    from genface.faces.extract import extract_faces

    orl = Path(os.environ.get("GENFACE_DATA", "/nonexistent")) / "orl_faces"
    if not orl.is_dir():
        pytest.skip("GENFACE_DATA/orl_faces not found (point GENFACE_DATA at the shared real-face data)")
    for person in ("s1", "s2", "s3", "s4"):
        extract_faces(orl / person, tmp_path / "gal" / person, size=64, detector="hog", padding="auto")

    def folder(p):
        return lambda: FolderFaces(tmp_path / "gal" / p / "faces", resolution=64, cache=False, progress=False)

    dm = SwapDataModule(dataset_a=folder("s1"), dataset_b=folder("s2"), dir_a=str(tmp_path / "gal" / "s1" / "faces"),
                        dir_b=str(tmp_path / "gal" / "s2" / "faces"), gallery_dir=str(tmp_path / "gal"),
                        resolution=64, batch_size=4, val_size=4, val_fraction=0.3, drop_last=False)
    dm.setup()
    data = dm.swap_eval_data()
    assert data.gallery is not None and len(torch.unique(data.gallery_labels)) == 4
    assert data.b_like_a is not None and data.b_valid.all()  # ORL: same file number in s2
    photos_b = data.b_like_a

    def real_b(x, target):
        return photos_b[: len(x)] if target == 1 else data.faces_a[: len(x)]

    names = ["swap_id_dlib", "swap_pose_dlib"]
    good = compute_metrics(names, swap_fn=real_b, swap_data=data)
    none = compute_metrics(names, swap_fn=lambda x, t: x, swap_data=data)
    assert good["swap_id_dlib/detected"] == 1.0 and good["swap_id_dlib"] >= 0.66
    # the denominators the rates are reported with ("k of n")
    assert good["swap_id_dlib/num_swaps"] == len(data.faces_a) and good["swap_id_dlib/num_b2a"] == len(data.faces_b)
    assert good["swap_id_dlib/real_b_num"] == len(data.faces_a)
    assert none["swap_id_dlib"] == 0.0 and none["swap_id_dlib/leakage"] < good["swap_id_dlib/leakage"]
    assert none["swap_pose_dlib"] == pytest.approx(0.0, abs=1e-9)
    assert good["swap_pose_dlib"] == pytest.approx(good["swap_pose_dlib/real_b"], rel=1e-6)

    def blank(x, target):  # no face at all: detection fails and retrieval counts it as a miss
        return torch.zeros_like(x)

    empty = compute_metrics(["swap_id_dlib"], swap_fn=blank, swap_data=data)
    assert empty["swap_id_dlib/detected"] == 0.0 and empty["swap_id_dlib"] == 0.0
