"""dlib face-embedding metrics (the optional ``faces`` extra)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from genface.metrics import face_embed

pytestmark = pytest.mark.skipif(
    face_embed.dlib_unavailable_reason() is not None,
    reason=f"faces extra not installed: {face_embed.dlib_unavailable_reason()}",
)


def test_identity_retrieval_top1_constructed():
    gallery = np.eye(4)
    query = np.eye(4)[[0, 1, 2, 3]] + 0.1
    assert face_embed.identity_retrieval_top1(query, gallery, [0, 1, 2, 3], [0, 1, 2, 3]) == 1.0
    assert face_embed.identity_retrieval_top1(query, gallery, [1, 0, 2, 3], [0, 1, 2, 3]) == 0.5
    query[0] = np.nan  # a missed detection counts as a miss
    assert face_embed.identity_retrieval_top1(query, gallery, [0, 1, 2, 3], [0, 1, 2, 3]) == 0.75


def test_embedder_full_frame_deterministic_and_hog_reports_misses():
    torch.manual_seed(0)
    img = (torch.rand(2, 3, 64, 64) * 255).to(torch.uint8)
    full = face_embed.DlibFaceEmbedder("full")
    a, b = full(img)["emb"], full(img)["emb"]
    assert a.shape == (2, 128) and torch.isfinite(a).all()
    torch.testing.assert_close(a, b)
    hog = face_embed.DlibFaceEmbedder("hog")
    noise = hog(img)["emb"]
    assert torch.isnan(noise).all()  # no face in noise: NaN rows, counted by the metrics


def _olivetti():
    root = os.environ.get("GENFACE_DATA")
    if not root:
        pytest.skip("set GENFACE_DATA=/work/shared/data to run the real-face test")
    faces = np.load(Path(root) / "olivetti" / "olivetti_faces_uint8.npy")
    ids = np.load(Path(root) / "olivetti" / "olivetti_targets.npy")
    return torch.from_numpy(faces)[:, None].expand(-1, 3, -1, -1).contiguous(), ids


@pytest.mark.realdata
def test_real_faces_same_identity_closer_and_fd_sanity(tmp_path):
    images, ids = _olivetti()
    sel = np.concatenate([np.where(ids == k)[0][:4] for k in range(6)])  # 6 people x 4 photos
    emb = face_embed.DlibFaceEmbedder("hog")(images[sel])["emb"].numpy()
    ok = np.isfinite(emb).all(1)
    assert ok.mean() > 0.5, "HOG should find most Olivetti faces at 256 px"
    e, k = emb[ok], ids[sel][ok]
    d = np.linalg.norm(e[:, None] - e[None], axis=-1)
    same = d[(k[:, None] == k[None]) & ~np.eye(len(k), dtype=bool)]
    diff = d[k[:, None] != k[None]]
    assert same.mean() < diff.mean()
    # Frechet distance through the registry: a set against itself ~ 0, against noise: large
    ref = images[sel].float() / 127.5 - 1
    gen_same = lambda n, seed: ref[:n]  # noqa: E731
    from genface.metrics import EvalContext

    out = face_embed._fd_dlib(EvalContext(generator_fn=gen_same, reference=ref, batch_size=24, cache_dir=tmp_path),
                              num_gen=24, name="fd")
    assert abs(out["fd"]) < 1e-6 and out["fd/gen_detected"] == out["fd/ref_detected"]
    noise = lambda n, seed: torch.rand(n, 3, 64, 64) * 2 - 1  # noqa: E731
    bad = face_embed._fd_dlib(EvalContext(generator_fn=noise, reference=ref, batch_size=24, cache_dir=tmp_path), num_gen=24, name="fd")
    # misses count: every noise image gets the "no face" embedding, far from every face
    assert bad["fd/gen_detected"] == 0.0 and np.isfinite(bad["fd"]) and bad["fd"] > 0.5


@pytest.mark.realdata
def test_id_recon_identity_kept(tmp_path):
    images, _ = _olivetti()
    ref = images[:16].float() / 127.5 - 1
    from genface.metrics import compute_metric

    out = compute_metric("id_dlib_recon1k", reference=ref, recon_fn=lambda x: x, cache_dir=tmp_path)
    assert out["id_dlib_recon1k/distance"] == pytest.approx(0.0, abs=1e-6)
    assert out["id_dlib_recon1k/same_person_rate"] == 1.0
