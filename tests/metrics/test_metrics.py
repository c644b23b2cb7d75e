"""genface.metrics: registry, statistics against independent computations, cache, FSD, PPL."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage
import scipy.signal
import scipy.stats
import torch

import genface.metrics as gm
from genface.metrics import common
from genface.metrics.swd import finalize_descriptors, laplacian_pyramid, sliced_wasserstein


# ---------------------------------------------------------------- registry
def test_unknown_metric_lists_valid_names():
    with pytest.raises(KeyError) as e:
        gm.get_metric("fid50k")
    assert "fid50k_full" in str(e.value) and "swd2k" in str(e.value)
    with pytest.raises(KeyError):
        gm.compute_metric("nope", generator_fn=lambda n, s: torch.zeros(n, 3, 8, 8))


def test_registry_declares_needs_and_filters():
    names = gm.list_metrics()
    assert {"fid10k_full", "kid10k_full", "is10k", "pr10k3_full", "swd16k", "msssim_pairs10k",
            "fsd_synth10k", "fd_dlib10k_full", "ppl10k_wend_pixel", "recon_full"} <= set(names)
    for n in names:
        spec = gm.get_metric(n)
        assert spec.needs and set(spec.needs) <= set(gm.NEEDS)
        assert spec.paper and spec.reference_impl and spec.description
    assert "recon_full" in gm.list_metrics({"autoencoder", "reference"})
    assert "recon_full" not in gm.list_metrics({"generator", "reference"})
    assert gm.list_metrics({"stylegan_mapping"}) == sorted(n for n in names if n.startswith("ppl"))
    assert not any("fid" in n for n in names if n.startswith(("fsd", "fd_dlib")))


def test_missing_needs_and_unknown_options_fail_loudly():
    with pytest.raises(ValueError, match="generator_fn"):
        gm.compute_metric("swd2k", reference=torch.zeros(4, 3, 16, 16))
    gen = lambda n, s: torch.zeros(n, 3, 16, 16)  # noqa: E731
    with pytest.raises(TypeError, match="num_gen"):  # the protocol in the name cannot be overridden
        gm.compute_metric("fsd_synth1k", gen, torch.zeros(4, 3, 16, 16), num_gen=10)


# ---------------------------------------------------------------- Frechet distance
def test_frechet_closed_form_diagonal():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    s1, s2 = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    expected = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    got = gm.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_matches_direct_scipy_and_torchmetrics():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 0.5
    mu1, mu2 = a.mean(0), b.mean(0)
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Direct: Tr(sqrt(sqrt(C1) C2 sqrt(C1))) is the symmetric form of Tr(sqrt(C1 C2)).
    r1 = scipy.linalg.sqrtm(c1).real
    direct = ((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(r1 @ c2 @ r1).real)
    got = gm.frechet_distance(*gm.feature_stats(a), *gm.feature_stats(b))
    assert got == pytest.approx(direct, rel=1e-6)
    from torchmetrics.image.fid import _compute_fid

    tm = _compute_fid(*(torch.tensor(v) for v in (mu1, c1, mu2, c2)))
    assert got == pytest.approx(float(tm), rel=1e-6)


def test_frechet_sanity_self_zero_noise_large():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(500, 8))
    assert abs(gm.frechet_distance(*gm.feature_stats(a), *gm.feature_stats(a))) < 1e-6
    far = rng.normal(loc=3, scale=2, size=(500, 8))
    assert gm.frechet_distance(*gm.feature_stats(a), *gm.feature_stats(far)) > 50


# ---------------------------------------------------------------- KID
def _mmd_loop(x, y):
    d = x.shape[1]
    k = lambda u, v: (u @ v / d + 1) ** 3  # noqa: E731
    m = len(x)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return kxx + kyy - 2 * kxy


def test_kid_matches_unbiased_mmd_loop_and_torchmetrics():
    rng = np.random.default_rng(3)
    real, gen = rng.normal(size=(20, 4)), rng.normal(0.3, 1.2, size=(20, 4))
    mean, std = gm.kernel_distance(real, gen, num_subsets=3, max_subset_size=20)
    assert mean == pytest.approx(_mmd_loop(gen, real), rel=1e-9)  # full set: every subset equal
    assert std == pytest.approx(0.0, abs=1e-12)
    from torchmetrics.image.kid import poly_mmd

    tm = poly_mmd(torch.tensor(real), torch.tensor(gen), degree=3, gamma=1 / 4, coef=1.0)
    assert mean == pytest.approx(float(tm), rel=1e-9)


def test_kid_subsets_and_sanity():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(300, 16))
    b = rng.normal(size=(300, 16))
    same, _ = gm.kernel_distance(a, b, num_subsets=20, max_subset_size=100)
    far, _ = gm.kernel_distance(a, b + 2, num_subsets=20, max_subset_size=100)
    assert abs(same) < 0.05 and far > 10 * abs(same) and far > 0.5


# ---------------------------------------------------------------- Inception Score
def test_inception_score_constructed_logits():
    c = 10
    confident = np.full((100, c), -50.0)
    confident[np.arange(100), np.arange(100) % c] = 50.0  # one-hot, classes balanced per split
    mean, std = gm.inception_score(confident, splits=10)
    assert mean == pytest.approx(c, rel=1e-6) and std < 1e-6
    assert gm.inception_score(np.zeros((50, c)), splits=5)[0] == pytest.approx(1.0)
    # independent: exp(H(mean p) - mean H(p)) on one split
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(64, 7)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    py = p.mean(0)
    expected = np.exp(scipy.stats.entropy(py) - np.mean([scipy.stats.entropy(r) for r in p]))
    assert gm.inception_score(logits, splits=1)[0] == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------- precision / recall
def test_precision_recall_constructed_sets():
    grid = np.stack(np.meshgrid(np.arange(10.0), np.arange(10.0)), -1).reshape(-1, 2)
    # k=3 radius on a unit grid is 1 (4-neighbours at distance 1).
    inside = grid[:50] + 0.3
    outside = grid[:50] + 100.0
    p, _ = gm.precision_recall(grid, inside, k=3)
    assert p == 1.0
    p, r = gm.precision_recall(grid, outside, k=3)
    assert p == 0.0 and r == 0.0
    half = np.concatenate([grid[:50] + 0.3, grid[:50] + 100.0])
    p, r = gm.precision_recall(grid, half, k=3)
    assert p == 0.5
    p, r = gm.precision_recall(grid, grid, k=3)
    assert p == 1.0 and r == 1.0


def test_precision_recall_matches_bruteforce():
    rng = np.random.default_rng(6)
    real, gen = rng.normal(size=(60, 3)), rng.normal(0.5, 1.5, size=(50, 3))

    def manifold_share(query, support, k=3):
        d = np.linalg.norm(support[:, None] - support[None], axis=-1)
        radii = np.sort(d, axis=1)[:, k]
        dq = np.linalg.norm(query[:, None] - support[None], axis=-1)
        return np.mean((dq <= radii[None]).any(1))

    p, r = gm.precision_recall(real, gen, k=3, batch=7)
    assert p == pytest.approx(manifold_share(gen, real))
    assert r == pytest.approx(manifold_share(real, gen))


# ---------------------------------------------------------------- SWD
def _scipy_laplacian(x, levels):  # independent: scipy.ndimage "mirror", like ProGAN's numpy code
    g = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1])[None, None] / 256.0
    down = lambda t: scipy.ndimage.convolve(t, g, mode="mirror")[:, :, ::2, ::2]  # noqa: E731

    def up(t):
        u = np.zeros((t.shape[0], t.shape[1], 2 * t.shape[2], 2 * t.shape[3]))
        u[:, :, ::2, ::2] = t
        return scipy.ndimage.convolve(u, g * 4, mode="mirror")

    pyr = [x.astype(np.float64)]
    for _ in range(1, levels):
        pyr.append(down(pyr[-1]))
        pyr[-2] = pyr[-2] - up(pyr[-1])
    return pyr


def test_laplacian_pyramid_matches_scipy():
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    ours = laplacian_pyramid(x.double(), 3)
    ref = _scipy_laplacian(x.numpy(), 3)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a.numpy(), b, atol=1e-9)


def test_sliced_wasserstein_matches_scipy_1d():
    rng = np.random.default_rng(7)
    a = torch.tensor(rng.normal(size=(200, 5)))
    b = torch.tensor(rng.normal(0.5, 2.0, size=(200, 5)))
    g = torch.Generator().manual_seed(3)
    got = sliced_wasserstein(a, b, dir_repeats=2, dirs_per_repeat=6, generator=g, chunk=4)
    g = torch.Generator().manual_seed(3)
    expected = []
    for _ in range(2):
        dirs = torch.randn(5, 6, generator=g)
        dirs = (dirs / dirs.norm(dim=0, keepdim=True)).double().numpy()
        expected.append(np.mean([scipy.stats.wasserstein_distance(a.numpy() @ d, b.numpy() @ d) for d in dirs.T]))
    assert got == pytest.approx(np.mean(expected), rel=1e-9)


def test_swd_sanity_and_descriptor_normalisation():
    d = finalize_descriptors(torch.randn(500, 3, 7, 7) * 5 + 3)
    assert d.shape == (500, 147)
    torch.manual_seed(0)
    base = (torch.rand(64, 3, 32, 32) * 255).round()
    smooth = torch.nn.functional.avg_pool2d(base, 5, 1, 2).to(torch.uint8)
    other = torch.nn.functional.avg_pool2d((torch.rand(64, 3, 32, 32) * 255).round(), 5, 1, 2).to(torch.uint8)
    noise = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    same = gm.swd_levels(smooth, other, nhoods_per_image=32)
    far = gm.swd_levels(smooth, noise, nhoods_per_image=32)
    assert list(same) == [32, 16]
    assert np.mean(list(far.values())) > 3 * np.mean(list(same.values()))


# ---------------------------------------------------------------- MS-SSIM
def _np_msssim(x, y, weights=(0.0448, 0.2856, 0.3001, 0.2363, 0.1333), reflect_pad=False):
    """Independent numpy MS-SSIM with ProGAN's shrinking window (scipy fftconvolve, valid).

    ``reflect_pad``: torchmetrics' SSIM convention (reflection-padded borders, variances >= 0).
    """
    x, y = x.astype(np.float64), y.astype(np.float64)
    vals_s, vals_c = [], []
    for _ in weights:
        size = min(11, x.shape[-1], x.shape[-2])
        sigma = size * 1.5 / 11
        r = np.arange(size) - (size - 1) / 2
        win = np.exp(-(r[:, None] ** 2 + r[None] ** 2) / (2 * sigma**2))
        win = (win / win.sum())[None, None]
        p = size // 2 if reflect_pad else 0
        def f(t, p=p, win=win):
            t = np.pad(t, ((0, 0), (0, 0), (p, p), (p, p)), mode="reflect")
            return scipy.signal.fftconvolve(t, win, mode="valid")

        mu1, mu2 = f(x), f(y)
        s11, s22, s12 = f(x * x) - mu1**2, f(y * y) - mu2**2, f(x * y) - mu1 * mu2
        if reflect_pad:
            s11, s22 = np.clip(s11, 0, None), np.clip(s22, 0, None)
        c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
        v1, v2 = 2 * s12 + c2, s11 + s22 + c2
        vals_s.append(np.mean((2 * mu1 * mu2 + c1) * v1 / ((mu1**2 + mu2**2 + c1) * v2), axis=(1, 2, 3)))
        vals_c.append(np.mean(v1 / v2, axis=(1, 2, 3)))
        x = (x[:, :, 0::2, 0::2] + x[:, :, 1::2, 0::2] + x[:, :, 0::2, 1::2] + x[:, :, 1::2, 1::2]) / 4
        y = (y[:, :, 0::2, 0::2] + y[:, :, 1::2, 0::2] + y[:, :, 0::2, 1::2] + y[:, :, 1::2, 1::2]) / 4
    s, c = np.clip(vals_s, 0, None), np.clip(vals_c, 0, None)
    w = np.array(weights)[:, None]
    return np.prod(c[:-1] ** w[:-1], axis=0) * s[-1] ** w[-1]


def test_ms_ssim_small_images_matches_numpy():
    torch.manual_seed(1)
    a = torch.nn.functional.avg_pool2d(torch.rand(4, 3, 64, 64) * 255, 3, 1, 1)
    b = (a + torch.randn_like(a) * 20).clamp(0, 255)
    np.testing.assert_allclose(gm.ms_ssim(a, b).numpy(), _np_msssim(a.numpy(), b.numpy()), rtol=1e-4)
    assert torch.allclose(gm.ms_ssim(a, a), torch.ones(4, dtype=torch.float64), atol=1e-5)


def test_ms_ssim_large_images_close_to_torchmetrics():
    # torchmetrics averages the SSIM term over reflection-padded borders (ProGAN/Wang: valid
    # region only), so the two agree closely but not exactly on large images.
    from torchmetrics.functional.image import (
        multiscale_structural_similarity_index_measure as tm_msssim,
    )

    torch.manual_seed(2)
    a = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 176, 176) * 255, 5, 1, 2).double()
    b = (a + torch.randn_like(a) * 25).clamp(0, 255)
    ref = tm_msssim(b, a, data_range=255.0, reduction="none", normalize="relu")
    np.testing.assert_allclose(gm.ms_ssim(b, a).numpy(), ref.numpy(), rtol=2e-3)


# ---------------------------------------------------------------- reconstruction
def test_reconstruction_errors_against_formulas():
    torch.manual_seed(3)
    x = torch.rand(3, 3, 32, 32)
    x_hat = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    e = gm.reconstruction_errors(x, x_hat)
    xn, yn = x.double().numpy(), x_hat.double().numpy()
    np.testing.assert_allclose(e["mae"].numpy(), np.abs(xn - yn).mean(axis=(1, 2, 3)), rtol=1e-9)
    np.testing.assert_allclose(e["psnr"].numpy(), 10 * np.log10(1 / ((xn - yn) ** 2).mean(axis=(1, 2, 3))), rtol=1e-9)
    # SSIM = single-scale MS-SSIM with weight 1 (numpy reference, torchmetrics' border
    # convention), data range 1 == 255 scaled.
    expected = _np_msssim(yn * 255, xn * 255, weights=(1.0,), reflect_pad=True)
    np.testing.assert_allclose(e["ssim"].numpy(), expected, rtol=1e-4)


def test_recon_metric_through_registry():
    ref = torch.rand(20, 3, 16, 16) * 2 - 1
    perfect = gm.compute_metric("recon_full", reference=ref, recon_fn=lambda x: x)
    assert perfect["recon_full/mae"] == 0 and perfect["recon_full/ssim"] == pytest.approx(1.0)
    blurred = gm.compute_metric("recon_full", reference=ref, recon_fn=lambda x: x * 0.5, batch_size=7)
    assert blurred["recon_full/mae"] > 0.1 and blurred["recon_full/num_images"] == 20


# ---------------------------------------------------------------- PPL
class _LinearStyleGAN:
    """mapping: w = A z; synthesis: x = B w (broadcast to num_ws), reshaped to images."""

    z_dim, w_dim, num_ws = 6, 5, 3

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.A = torch.randn(self.w_dim, self.z_dim, generator=g)
        self.B = torch.randn(3 * 4 * 4, self.w_dim, generator=g) * 0.1

    def mapping(self, z):
        return (z @ self.A.T)[:, None, :].repeat(1, self.num_ws, 1)

    def synthesis(self, ws, noise_mode="const"):
        assert noise_mode == "const"
        return (ws[:, 0] @ self.B.T).view(-1, 3, 4, 4)


def test_ppl_w_end_linear_closed_form():
    m = _LinearStyleGAN()
    lengths = gm.path_lengths(m, gm.ppl.pixel_distance, 50, space="w", sampling="end", batch_size=16, seed=4)
    g = torch.Generator().manual_seed(4)
    expected = []
    for n in (16, 16, 16, 2):
        z0, z1 = torch.randn(2, n, m.z_dim, generator=g)
        torch.rand(n, 1, generator=g)
        dw = (z1 - z0) @ m.A.T
        expected.append(((dw @ m.B.T) ** 2).mean(1))  # linear: d/eps^2 = mean((B dw)^2)
    expected = torch.cat(expected).numpy()
    np.testing.assert_allclose(lengths, expected, rtol=2e-2)
    lo, hi = np.percentile(expected, 1, method="lower"), np.percentile(expected, 99, method="higher")
    assert gm.ppl_from_lengths(lengths) == pytest.approx(expected[(expected >= lo) & (expected <= hi)].mean(), rel=2e-2)


def test_ppl_through_registry_and_z_space():
    m = _LinearStyleGAN()
    out = gm.compute_metric("ppl10k_zfull_pixel", model=m, batch_size=2000)
    assert np.isfinite(out["ppl10k_zfull_pixel"]) and out["ppl10k_zfull_pixel"] > 0
    const = type("Const", (), {"z_dim": 4, "mapping": lambda self, z: z,
                               "synthesis": lambda self, ws, noise_mode: torch.zeros(len(ws), 3, 4, 4)})()
    assert gm.compute_metric("ppl10k_wend_pixel", model=const, batch_size=5000)["ppl10k_wend_pixel"] == 0


# ---------------------------------------------------------------- reference cache
class _CountingExtractor:
    cache_name = "counting-test"

    def __init__(self):
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        x = images.float()
        return {"feat": torch.stack([x.mean((1, 2, 3)), x.std((1, 2, 3))], 1)}


class _DictDataset:
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i], "identity": torch.tensor(i % 3)}


def test_reference_cache_second_call_does_not_recompute(tmp_path):
    ref = _DictDataset(torch.rand(40, 3, 8, 8) * 2 - 1)
    ext = _CountingExtractor()
    a = common.reference_features(ref, ext, batch_size=16, cache=tmp_path, key="toy")
    assert ext.calls == 3
    files = list((tmp_path / "reference").glob("*.safetensors"))
    assert len(files) == 1 and "toy" in files[0].name and "8x8" in files[0].name and "n40" in files[0].name
    assert not list((tmp_path / "reference").glob("*.tmp"))
    b = common.reference_features(ref, ext, batch_size=16, cache=tmp_path, key="toy")
    assert ext.calls == 3
    np.testing.assert_array_equal(a["feat"], b["feat"])
    # keyed by content when no key is given; a different reference is a different entry
    common.reference_features(ref, ext, batch_size=64, cache=tmp_path)
    common.reference_features(ref, ext, batch_size=64, cache=tmp_path)
    assert ext.calls == 4
    other = _DictDataset(torch.rand(40, 3, 8, 8) * 2 - 1)
    common.reference_features(other, ext, batch_size=64, cache=tmp_path)
    assert ext.calls == 5


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("GENFACE_CACHE", str(tmp_path))
    assert common.cache_dir() == tmp_path / "metrics"


# ---------------------------------------------------------------- FSD on a fake SyntheticFaces
class _FakeSyntheticFaces:
    """Images whose colour encodes the factors (identity = a colour cluster)."""

    def __init__(self, n=256, ids=4, res=16, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.identities = torch.arange(n) % ids
        centers = torch.rand(ids, 3, generator=g) * 1.6 - 0.8
        self.factors = torch.cat([centers[self.identities], torch.rand(n, 2, generator=g) * 2 - 1], 1)
        xx = torch.linspace(-1, 1, res)
        img = self.factors[:, :3, None, None] + 0.3 * self.factors[:, 3, None, None, None] * xx[None, None, None, :]
        self.images = ((img.expand(n, 3, res, res).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        self.factor_names = ["r", "g", "b", "grad", "unused"]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i].float() / 127.5 - 1, "identity": self.identities[i],
                "factors": self.factors[i]}


def test_synth_net_trains_saves_and_reloads(tmp_path):
    from genface.metrics import synth_net

    ds = _FakeSyntheticFaces()
    net = synth_net.get_synth_net(16, cache=tmp_path, dataset=ds)
    path = synth_net.synth_net_path(16, tmp_path)
    assert path.is_file()
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        assert f.metadata()["synthetic"] == "true"
    again = synth_net.get_synth_net(16, cache=tmp_path, dataset=None)  # cached: no training data needed
    x = torch.stack([ds[i]["image"] for i in range(8)])
    torch.testing.assert_close(net.features(x), again.features(x))
    pred, logits = net(x)
    assert pred.shape == (8, 5) and logits.shape == (8, 4)


def test_fsd_through_registry(tmp_path):
    from genface.metrics import synth_net

    ds = _FakeSyntheticFaces(n=256)
    synth_net.get_synth_net(16, cache=tmp_path, dataset=ds)
    other = _FakeSyntheticFaces(n=1000, seed=0)  # the same distribution
    same_fn = lambda n, seed: torch.stack([other[(seed * 64 + i) % 1000]["image"] for i in range(n)])  # noqa: E731
    noise_fn = lambda n, seed: torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1  # noqa: E731
    good = gm.compute_metric("fsd_synth1k", same_fn, ds, cache_dir=tmp_path, reference_key="fake")
    bad = gm.compute_metric("fsd_synth1k", noise_fn, ds, cache_dir=tmp_path, reference_key="fake")
    assert good["fsd_synth1k/num_reference"] == 256
    assert bad["fsd_synth1k"] > 10 * good["fsd_synth1k"]
    assert len(list((tmp_path / "reference").glob("synthnet-r16-*fake*"))) == 1


def test_compute_metrics_swd_and_msssim_end_to_end():
    ds = _FakeSyntheticFaces(n=64, res=32)
    gen = lambda n, seed: torch.stack([ds[(seed + i) % 64]["image"] for i in range(n)])  # noqa: E731
    from genface.metrics import msssim, swd

    out = swd._swd(gm.registry.EvalContext(generator_fn=gen, reference=ds, batch_size=32), num=64, name="swd_t")
    assert set(out) == {"swd_t", "swd_t/32px", "swd_t/16px"}
    ctx = gm.registry.EvalContext(generator_fn=gen, reference=ds, batch_size=16)
    res = msssim._msssim(ctx, num_pairs=32, name="ms")
    assert 0 < res["ms"] <= 1 and 0 < res["ms/reference"] <= 1
