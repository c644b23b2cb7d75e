"""FaceSwap network, augmentation, losses and LightningModule."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from genface.data.pairs import SwapPairDataset
from genface.models.faceswap import PRESETS, FaceSwap, FaceSwapConfig, build_faceswap
from genface.training.augment import (
    FaceSwapAugment,
    random_affine,
    random_lab,
    random_warp,
)
from genface.training.base import NonFiniteLossError
from genface.training.faceswap import LOSSES, FaceSwapLoss, FaceSwapModule


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a loaded 2-core machine two OpenMP threads make these small
    convolutions ~50x slower (spinning on the busy core). Restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _smooth_faces(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """Smooth random images in [0, 1]: low-frequency noise upsampled (face-like statistics)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand((n, 3, 6, 6), generator=g)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic",
                                           align_corners=False).clamp(0, 1)


# -- model ---------------------------------------------------------------------------------
def test_original_parameter_counts_match_faceswap():
    net = FaceSwap()  # defaults = faceswap "original" at 64 px
    assert _count(net.encoder) == 69_662_976
    assert len(net.decoders) == 2
    for dec in net.decoders:
        assert _count(dec) == 6_199_747


def test_mask_head_adds_one_conv_per_decoder():
    net = FaceSwap(width=0.25, learn_mask=True, num_identities=3)
    plain = FaceSwap(width=0.25, num_identities=3)
    extra = 64 // 4 * 1 * 25 + 1  # Conv2d(16 -> 1, k5) + bias
    assert _count(net) - _count(plain) == 3 * extra


@pytest.mark.parametrize("preset", ["lite", "lite128"])
def test_swap_shapes_and_range(preset):
    net = build_faceswap(preset, num_identities=3, learn_mask=True)
    r = net.config.resolution
    x = torch.rand(2, 3, r, r)
    z = net.encode(x)
    assert z.shape == (2, net.encoder.out_channels, r // 8, r // 8)
    y, m = net(x, 2, return_mask=True)
    assert y.shape == (2, 3, r, r) and m.shape == (2, 1, r, r)
    assert 0 <= float(y.detach().min()) and float(y.detach().max()) <= 1
    s = net.swap(x, to=1)
    assert s.shape == x.shape and not s.requires_grad
    # per-sample identities give the same result as decoding each sample with its decoder
    mixed = net(x, torch.tensor([0, 2]))
    torch.testing.assert_close(mixed[0], net(x[:1], 0)[0])
    torch.testing.assert_close(mixed[1], net(x[1:], 2)[0])


def test_bad_shapes_and_identities_fail_loudly():
    net = build_faceswap("lite")
    with pytest.raises(ValueError, match="expects faces of shape"):
        net(torch.rand(1, 3, 32, 32), 0)
    with pytest.raises(IndexError, match="decoders 0..1"):
        net(torch.rand(1, 3, 64, 64), 2)
    with pytest.raises(KeyError, match="valid presets"):
        build_faceswap("nope")
    with pytest.raises(ValueError, match="resolution"):
        FaceSwapConfig(resolution=72)
    assert set(PRESETS) >= {"original", "lite", "original128"}


def test_save_and_load_round_trip(tmp_path):
    net = build_faceswap("lite", learn_mask=True)
    net.save_pretrained(tmp_path / "fs")
    back = FaceSwap.from_pretrained(tmp_path / "fs")
    assert back.config == net.config
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(back.swap(x, to=1), net.swap(x, to=1))


# -- augmentation --------------------------------------------------------------------------
def test_warp_is_identity_at_zero_noise():
    x = _smooth_faces(3)
    warped, target = random_warp(x, sigma=0.0)
    torch.testing.assert_close(warped, x, atol=1e-5, rtol=0)
    assert target is x
    warped, target = random_warp(x, sigma=0.0, umeyama_target=True)
    torch.testing.assert_close(target, x, atol=1e-5, rtol=0)


def test_warp_touches_only_the_input():
    x = _smooth_faces(4)
    x_before = x.clone()
    g = torch.Generator().manual_seed(1)
    warped, target = random_warp(x, generator=g)
    assert target is x and torch.equal(x, x_before)  # target untouched, input not modified in place
    assert (warped - x).abs().mean() > 1e-3  # the input did move
    # through the full augmentation the target is the (colour/affine augmented) unwarped face
    aug = FaceSwapAugment(color_lightness=0, color_ab=0, rotation=0, zoom=0, shift=0, flip=0)
    inp, tgt, _ = aug(x, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(tgt, x)
    assert (inp - x).abs().mean() > 1e-3


def test_umeyama_target_approximates_the_warp():
    x = _smooth_faces(8, seed=3)
    warped, target = random_warp(x, sigma=10 / 256, umeyama_target=True,
                                 generator=torch.Generator().manual_seed(0))
    # the similarity-warped target is closer to the warped input than the original is
    assert (warped - target).abs().mean() < (warped - x).abs().mean()


def test_random_affine_is_identical_across_tensors():
    x = _smooth_faces(6)
    a, b = random_affine(x, x.clone(), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b)
    assert (a - x).abs().mean() > 1e-3
    (same,) = random_affine(x, rotation=0, zoom=0, shift=0, flip=0)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
    (flipped,) = random_affine(x, rotation=0, zoom=0, shift=0, flip=1.0)
    torch.testing.assert_close(flipped, x.flip(-1), atol=1e-5, rtol=0)


def test_random_lab_stays_in_range_and_zero_is_identity():
    x = _smooth_faces(4)
    y = random_lab(x, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    assert (y - x).abs().mean() > 1e-3
    torch.testing.assert_close(random_lab(x, 0.0, 0.0), x, atol=2e-3, rtol=0)


# -- losses --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LOSSES)
def test_each_loss_is_zero_on_identical_images_and_positive_otherwise(name):
    crit = FaceSwapLoss({name: 1.0})
    x = _smooth_faces(2)
    assert float(crit(x, x)[0]) == pytest.approx(0.0, abs=1e-4)
    assert float(crit(x.flip(0), x)[0]) > 1e-3


def test_region_weights_emphasise_errors_there():
    crit = FaceSwapLoss({"mae": 1.0, "mse": 0.5})
    target = torch.zeros(1, 3, 8, 8)
    pred = torch.zeros(1, 3, 8, 8)
    pred[..., 0, 0] = 1.0  # one wrong pixel
    w = torch.ones(1, 1, 8, 8)
    base, _ = crit(pred, target)
    w[..., 0, 0] = 3.0  # ... inside an "eye" region
    weighted, parts = crit(pred, target, w)
    assert set(parts) == {"mae", "mse"}
    assert float(weighted) > float(base)
    # exact weighted mean for MAE: 3 / (63 + 3)
    assert float(parts["mae"]) == pytest.approx(3 / 66, rel=1e-5)
    with pytest.raises(KeyError, match="valid"):
        FaceSwapLoss({"lpips": 1.0})


# -- LightningModule -----------------------------------------------------------------------
def _batch(n: int = 4, seed: int = 0) -> dict:
    # darker than mid-grey, so that an untrained net (outputs ~0.5) starts far from the target
    return {"image_a": _smooth_faces(n, seed=seed) * 0.6 - 1,
            "image_b": _smooth_faces(n, seed=seed + 100) * 0.6 - 1}


def test_training_step_reduces_the_loss():
    torch.manual_seed(0)
    # no augmentation: the same faces every step, so the loss must fall (augmented training
    # runs in test_module_with_trainer_logs_and_previews)
    module = FaceSwapModule(build_faceswap("lite"), lr=5e-4, augment=False,
                            preview_every_n_steps=0)
    module.log = lambda *a, **k: None  # no trainer attached
    opt = module.configure_optimizers()
    batch = _batch()
    losses = []
    for _ in range(10):
        loss = module.training_step(batch, 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.6 * losses[0]


def test_module_with_trainer_logs_and_previews(tmp_path):
    torch.manual_seed(0)
    faces = [{"image": _smooth_faces(1, seed=i)[0] * 2 - 1, "identity": torch.tensor(i % 2)}
             for i in range(8)]
    pairs = SwapPairDataset(faces[:4], faces[4:], length=8)
    module = FaceSwapModule(FaceSwap(width=1 / 16), lr=1e-3, losses={"mae": 1.0, "ssim": 1.0},
                            preview_every_n_steps=2, preview_samples=2)
    trainer = L.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, limit_val_batches=1, val_check_interval=2)
    trainer.fit(module, DataLoader(pairs, batch_size=4), DataLoader(pairs, batch_size=4))
    for key in ("train/loss", "train/loss_a", "train/loss_b", "val/mae"):
        assert torch.isfinite(trainer.callback_metrics[key]), key
    grid = module.last_preview
    assert grid is not None and grid.shape == (3, 6 * 64 + 7 * 2, 2 * 64 + 3 * 2)
    from genface.provenance import is_marked_png

    previews = sorted((tmp_path / "previews").glob("*.png"))
    assert previews and all(is_marked_png(p) for p in previews)
    samples = module.sample_images(3)
    assert samples.shape == (3, 3, 64, 64) and float(samples.min()) >= -1


def test_preview_grid_rows():
    module = FaceSwapModule(FaceSwap(width=1 / 16), preview_samples=3)
    batch = _batch(4)
    grid = module.preview_grid(batch)
    assert grid.shape == (3, 6 * 64 + 7 * 2, 3 * 64 + 4 * 2)
    # row 0 shows A itself, row 3 shows B itself
    a0 = (batch["image_a"][0] + 1) / 2
    torch.testing.assert_close(grid[:, 2:66, 2:66], a0)
    b0 = (batch["image_b"][0] + 1) / 2
    torch.testing.assert_close(grid[:, 2 + 3 * 66:2 + 3 * 66 + 64, 2:66], b0)


def test_nan_loss_stops_before_the_optimizer_step(tmp_path):
    net = FaceSwap(width=1 / 16)
    module = FaceSwapModule(net, augment=False, preview_every_n_steps=0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    bad = _batch(2)
    bad["image_a"][0, 0, 0, 0] = float("nan")
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path)
    with pytest.raises(NonFiniteLossError, match="non-finite loss"):
        trainer.fit(module, DataLoader([{k: v[i] for k, v in bad.items()} for i in range(2)],
                                       batch_size=2))
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed despite the NaN loss"
    assert list(tmp_path.rglob("nonfinite_step*.json"))


def test_swap_pair_dataset_is_deterministic_and_independent():
    a = [{"image": torch.full((3, 4, 4), float(i) / 10), "identity": torch.tensor(0)} for i in range(5)]
    b = [{"image": torch.full((3, 4, 4), -float(i) / 10), "identity": torch.tensor(7)} for i in range(3)]
    ds = SwapPairDataset(a, b, length=20)
    assert len(ds) == 20 and len(SwapPairDataset(a, b)) == 5
    item = ds[3]
    assert set(item) == {"image_a", "image_b", "identity_a", "identity_b"}
    assert int(item["identity_b"]) == 7 and item["identity_a"].dtype == torch.int64
    assert all(torch.equal(ds[i]["image_a"], ds[i]["image_a"]) for i in range(20))
    idx = [ds.indices(i) for i in range(20)]
    assert len({i for i, _ in idx}) > 1 and len({j for _, j in idx}) > 1
    assert len(set(idx)) > 5  # A and B indices are not locked together


def test_synthetic_swap_pairs_and_ground_truth():
    synthetic = pytest.importorskip("genface.data.synthetic")
    from genface.data.pairs import synthetic_swap_ground_truth, synthetic_swap_pairs
    from genface.faces.metrics import reconstruction_metrics

    faces = synthetic.SyntheticFaces(num_images=8, num_identities=2, resolution=64, seed=0,
                                     cache=False)
    pairs = synthetic_swap_pairs(faces, 0, 1, length=6)
    item = pairs[0]
    assert (int(item["identity_a"]), int(item["identity_b"])) == (0, 1)
    assert item["image_a"].shape == (3, 64, 64)
    # the ground truth of "identity i in image i's own pose" is the image itself
    gt = synthetic_swap_ground_truth(faces, [0, 1], 0)
    torch.testing.assert_close(gt[0] * 2 - 1, faces[0]["image"], atol=1 / 255, rtol=0)
    assert gt.shape == (2, 3, 64, 64) and float(gt.min()) >= 0
    net = FaceSwap(width=1 / 16)
    x = torch.stack([faces[0]["image"], faces[2]["image"]]) / 2 + 0.5
    m = reconstruction_metrics(net.swap(x, to=1), synthetic_swap_ground_truth(faces, [0, 2], 1))
    assert set(m) == {"mae", "psnr", "ssim"} and 0 < m["mae"] < 1
