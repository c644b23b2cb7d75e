"""Real-face datasets: FolderFaces, CelebAFaces, OlivettiFaces (genface/data/folder.py, celeba.py).

Every test writes its own small images with PIL into a tmp folder; the real-data smoke tests
at the end read ``$GENFACE_DATA`` and skip when it is unset.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, JpegImagePlugin
from torch.utils.data import DataLoader

from genface.data import folder as folder_mod
from genface.data.celeba import ANNOTATION_FILES, CelebAFaces
from genface.data.folder import (
    IMAGE_EXTENSIONS,
    BadImageError,
    FolderFaces,
    OlivettiFaces,
    load_face,
)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def solid(color, size=(40, 30), mode="RGB") -> Image.Image:
    return Image.new(mode, size, color)


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """Sample image in [-1, 1] back to 0..255 (as float, for comparisons)."""
    return (image + 1) * 127.5


def make(ds_root: Path, rel: str, image: Image.Image, **save) -> Path:
    path = ds_root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **save)
    return path


def build(root, tmp_path, **kw) -> FolderFaces:
    kw.setdefault("cache_dir", tmp_path / "cache")
    kw.setdefault("progress", False)
    return FolderFaces(root, **kw)


@pytest.fixture
def mixed(tmp_path) -> Path:
    """A folder with every supported format and mode, nested, in two identity folders."""
    root = tmp_path / "faces"
    make(root, "alice/rgb.jpg", solid(RED), quality=95)
    make(root, "alice/grey.png", solid(200, mode="L"))
    rgba = Image.new("RGBA", (30, 30), (0, 0, 255, 0))  # fully transparent blue
    make(root, "alice/rgba.png", rgba)
    make(root, "alice/deep/nested/sixteen.png",
         Image.fromarray(np.full((24, 24), 128 * 257, dtype=np.uint16)))
    make(root, "bob/x.pgm", solid(60, mode="L"))
    make(root, "bob/y.ppm", solid(GREEN))
    make(root, "bob/z.bmp", solid(BLUE))
    make(root, "bob/w.webp", solid(RED), lossless=True)
    make(root, "bob/UPPER.JPG", solid(GREEN), quality=95)
    pal = solid(BLUE).convert("P", palette=Image.Palette.ADAPTIVE)
    make(root, "bob/pal.png", pal)
    (root / "bob" / "notes.txt").write_text("not an image, wrong extension: ignored")
    (root / "bob" / "._hidden.jpg").write_bytes(b"macOS fork")  # hidden: ignored
    return root


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def test_every_format_and_mode_gives_rgb_in_range(mixed, tmp_path):
    ds = build(mixed, tmp_path, resolution=16)
    assert len(ds) == 10
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (10, 3, 16, 16)
    by_name = {p.name: i for i, p in enumerate(ds.files)}
    assert "notes.txt" not in by_name and "._hidden.jpg" not in by_name
    for i in range(len(ds)):
        s = ds[i]
        assert s["image"].dtype == torch.float32 and s["image"].shape == (3, 16, 16)
        assert s["image"].min() >= -1 and s["image"].max() <= 1
        assert s["identity"].dtype == torch.int64 and s["identity"].ndim == 0

    def mean_rgb(name):
        return to_uint8(ds[by_name[name]]["image"]).mean(dim=(1, 2))

    assert torch.allclose(mean_rgb("rgb.jpg"), torch.tensor([255.0, 0, 0]), atol=4)
    assert torch.allclose(mean_rgb("grey.png"), torch.tensor([200.0] * 3), atol=1)
    # transparent pixels are composited over the white default background
    assert torch.allclose(mean_rgb("rgba.png"), torch.tensor([255.0] * 3), atol=1)
    # 16-bit grey 128*257 is scaled to 128, not clipped to 255
    assert torch.allclose(mean_rgb("sixteen.png"), torch.tensor([128.0] * 3), atol=1)
    assert torch.allclose(mean_rgb("x.pgm"), torch.tensor([60.0] * 3), atol=1)
    assert torch.allclose(mean_rgb("y.ppm"), torch.tensor([0.0, 255, 0]), atol=1)
    assert torch.allclose(mean_rgb("z.bmp"), torch.tensor([0.0, 0, 255]), atol=1)
    assert torch.allclose(mean_rgb("w.webp"), torch.tensor([255.0, 0, 0]), atol=1)
    assert torch.allclose(mean_rgb("UPPER.JPG"), torch.tensor([0.0, 255, 0]), atol=4)
    assert torch.allclose(mean_rgb("pal.png"), torch.tensor([0.0, 0, 255]), atol=1)


def test_background_option_and_partial_alpha(tmp_path):
    root = tmp_path / "a"
    make(root, "half.png", Image.new("RGBA", (20, 20), (255, 0, 0, 128)))
    ds = build(root, tmp_path, resolution=8, background=(0, 0, 0), cache=False)
    rgb = to_uint8(ds[0]["image"]).mean(dim=(1, 2))
    assert torch.allclose(rgb, torch.tensor([128.0, 0, 0]), atol=2)
    with pytest.raises(ValueError, match="background"):
        build(root, tmp_path, background=(0, 0, 300))


def test_exif_orientation_is_applied(tmp_path):
    # stored landscape: left half red, right half blue; EXIF orientation 6 = "rotate 90 CW"
    # so the upright picture is portrait with red on top and blue below.
    im = Image.new("RGB", (40, 20), RED)
    im.paste(Image.new("RGB", (20, 20), BLUE), (20, 0))
    exif = Image.Exif()
    exif[0x0112] = 6
    root = tmp_path / "exif"
    make(root, "rot.jpg", im, exif=exif, quality=95)
    x = to_uint8(FolderFaces(root, resolution=16, cache=False, progress=False)[0]["image"])
    top, bottom = x[:, :6].mean(dim=(1, 2)), x[:, -6:].mean(dim=(1, 2))
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_shorter_side_resize_then_centre_crop(tmp_path):
    # 60x20: a centre square of 20x20 is green, the sides red -> only green survives
    im = Image.new("RGB", (60, 20), RED)
    im.paste(Image.new("RGB", (20, 20), GREEN), (20, 0))
    root = tmp_path / "wide"
    make(root, "w.png", im)
    x = to_uint8(FolderFaces(root, resolution=10, cache=False, progress=False)[0]["image"])
    # the filter reaches one source pixel past the crop (as resize-then-crop does): only
    # the outermost output columns may pick up a trace of red
    assert torch.allclose(x[:, :, 1:-1].mean(dim=(1, 2)), torch.tensor([0.0, 255, 0]), atol=1)
    assert x[0].max() < 20 and x[1].min() > 235


def test_small_images_are_upscaled_and_max_images_may_exceed_size(tmp_path):
    root = tmp_path / "tiny"
    for i in range(3):
        make(root, f"{i}.png", solid((i * 50, 0, 0), size=(7, 5)))
    ds = build(root, tmp_path, resolution=32, max_images=100)
    assert len(ds) == 3 and ds.images.shape == (3, 3, 32, 32)


def test_jpeg_draft_decodes_large_images_at_reduced_size(tmp_path, monkeypatch):
    root = tmp_path / "big"
    make(root, "big.jpg", solid(RED, size=(800, 600)), quality=90)
    seen = []
    original = JpegImagePlugin.JpegImageFile.load

    def spy(self):
        seen.append(self.size)
        return original(self)

    monkeypatch.setattr("PIL.JpegImagePlugin.JpegImageFile.load", spy)
    out = load_face(root / "big.jpg", 64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    # at least 2 * 64 = 128 px are kept: 600 // 128 = 4 -> DCT scale 1/4, decoded at 200x150
    assert seen and seen[0] == (200, 150)


def test_decompression_bomb_is_a_bad_file_and_the_warning_zone_still_decodes(tmp_path, monkeypatch):
    root = tmp_path / "bomb"
    make(root, "a_ok.png", solid(RED, size=(20, 20)))  # 400 px
    make(root, "b_warn.jpg", solid(GREEN, size=(40, 40)), quality=95)  # 1600 px
    make(root, "c_bomb.png", solid(BLUE, size=(100, 100)))  # 10000 px
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # warn above 1000, error above 2000
    with pytest.raises(BadImageError, match="c_bomb.png.*too large"), pytest.warns(
            Image.DecompressionBombWarning):
        build(root, tmp_path, resolution=8, num_workers=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = build(root, tmp_path, resolution=8, skip_bad=True, num_workers=0)
    assert [p.name for p in ds.files] == ["a_ok.png", "b_warn.jpg"]
    assert ds.num_skipped == 1 and ds.skipped_files[0].name == "c_bomb.png"
    assert any(issubclass(w.category, Image.DecompressionBombWarning) for w in caught)


# ---------------------------------------------------------------------------------------------
# Labels, subsets, loaders
# ---------------------------------------------------------------------------------------------


def test_subfolder_labels(mixed, tmp_path):
    make(mixed, "root_level.png", solid(RED))
    ds = build(mixed, tmp_path, resolution=8, labels="subfolders")
    assert ds.class_names == ["alice", "bob"] and ds.num_identities == 2
    for path, ident in zip(ds.files, ds.identities.tolist()):
        rel = path.relative_to(mixed)
        expected = ds.class_names.index(rel.parts[0]) if len(rel.parts) > 1 else -1
        assert ident == expected, rel
    assert ds[ds.files.index(mixed / "alice/deep/nested/sixteen.png")]["identity"] == 0
    assert (ds.identities == -1).sum() == 1
    unlabelled = build(mixed, tmp_path, resolution=8)
    assert unlabelled.class_names == [] and (unlabelled.identities == -1).all()
    with pytest.raises(ValueError, match="subfolders"):
        build(mixed, tmp_path, labels="folders")


def test_max_images_is_a_deterministic_subset(tmp_path):
    root = tmp_path / "many"
    for i in range(12):
        make(root, f"{i:02d}.png", solid((i * 20, 0, 0), size=(8, 8)))
    a = build(root, tmp_path, resolution=8, max_images=5, cache=False)
    b = build(root, tmp_path, resolution=8, max_images=5, cache=False)
    c = build(root, tmp_path, resolution=8, max_images=5, seed=1, cache=False)
    assert len(a) == 5 and a.files == b.files and torch.equal(a.images, b.images)
    assert a.files == sorted(a.files) and a.files != c.files
    # the pixels belong to the chosen files
    for path, img in zip(a.files, a.images):
        assert abs(int(img[0].float().mean()) - int(path.stem) * 20) <= 1
    with pytest.raises(ValueError, match="max_images"):
        build(root, tmp_path, max_images=0)


def test_dataloader_collates_the_contract(mixed, tmp_path):
    ds = build(mixed, tmp_path, resolution=8, labels="subfolders")
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=True)))
    assert batch["image"].shape == (4, 3, 8, 8) and batch["image"].dtype == torch.float32
    assert batch["identity"].shape == (4,) and batch["identity"].dtype == torch.int64


# ---------------------------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------------------------


def _decoder_must_not_run(*args, **kwargs):
    raise AssertionError("the cache should have been used, not the decoder")


def test_cache_is_reused_without_decoding(mixed, tmp_path, monkeypatch):
    first = build(mixed, tmp_path, resolution=16, labels="subfolders")
    assert not first.from_cache and first.cache_file.is_file()
    assert first.cache_file.parent == tmp_path / "cache"
    assert not [p for p in first.cache_file.parent.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.setattr(folder_mod, "load_face", _decoder_must_not_run)
    second = build(mixed, tmp_path, resolution=16, labels="subfolders")
    assert second.from_cache and second.cache_file == first.cache_file
    assert torch.equal(second.images, first.images)
    assert torch.equal(second.identities, first.identities) and second.files == first.files
    # another resolution is another cache
    with pytest.raises(AssertionError, match="cache should have been used"):
        build(mixed, tmp_path, resolution=8)


def test_cache_is_invalidated_when_a_file_changes(tmp_path, monkeypatch):
    root = tmp_path / "edit"
    make(root, "a.png", solid(RED, size=(8, 8)))
    make(root, "b.png", solid(GREEN, size=(8, 8)))
    first = build(root, tmp_path, resolution=8)
    make(root, "b.png", solid(BLUE, size=(9, 9)))  # new size and mtime
    os.utime(root / "b.png", ns=(1, 1))
    second = build(root, tmp_path, resolution=8)
    assert not second.from_cache and second.cache_file != first.cache_file
    assert to_uint8(second[1]["image"])[2].mean() > 250
    monkeypatch.setattr(folder_mod, "load_face", _decoder_must_not_run)
    make(root, "c.png", solid(RED, size=(8, 8)))  # a new file: must decode again
    with pytest.raises(AssertionError, match="cache should have been used"):
        build(root, tmp_path, resolution=8)


def test_cache_false_writes_nothing_and_env_var_sets_the_default(tmp_path, monkeypatch):
    root = tmp_path / "env"
    make(root, "a.png", solid(RED, size=(8, 8)))
    ds = FolderFaces(root, resolution=8, cache=False, cache_dir=tmp_path / "c", progress=False)
    assert ds.cache_file is None and not (tmp_path / "c").exists()
    monkeypatch.setenv("GENFACE_CACHE", str(tmp_path / "gc"))
    ds = FolderFaces(root, resolution=8, progress=False)
    assert ds.cache_file.parent == tmp_path / "gc" / "folder" and ds.cache_file.is_file()


def test_unreadable_cache_is_rebuilt(tmp_path):
    root = tmp_path / "rebuild"
    make(root, "a.png", solid(RED, size=(8, 8)))
    first = build(root, tmp_path, resolution=8)
    first.cache_file.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="rebuilding"):
        second = build(root, tmp_path, resolution=8)
    assert not second.from_cache and torch.equal(second.images, first.images)
    assert build(root, tmp_path, resolution=8).from_cache


def test_progress_bar_path_and_threads(mixed, tmp_path):
    ds = build(mixed, tmp_path, resolution=8, progress=True, num_workers=2, cache=False)
    ref = build(mixed, tmp_path, resolution=8, num_workers=0, cache=False)
    assert torch.equal(ds.images, ref.images)


# ---------------------------------------------------------------------------------------------
# Errors and bad files
# ---------------------------------------------------------------------------------------------


def test_missing_path_and_file_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        FolderFaces(missing)
    (tmp_path / "file.jpg").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="file.jpg"):
        FolderFaces(tmp_path / "file.jpg")


def test_empty_folder_names_path_and_extensions(tmp_path):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "readme.txt").write_text("no faces here")
    with pytest.raises(ValueError) as err:
        FolderFaces(empty, cache_dir=tmp_path / "c")
    assert str(empty) in str(err.value)
    assert all(ext in str(err.value) for ext in IMAGE_EXTENSIONS)


@pytest.fixture
def with_bad(tmp_path) -> Path:
    root = tmp_path / "bad"
    make(root, "good1.png", solid(RED, size=(16, 16)))
    make(root, "good2.jpg", solid(GREEN, size=(16, 16)))
    (root / "zero.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("this is not a JPEG")
    good = make(root, "tmp.jpg", Image.effect_noise((64, 64), 60).convert("RGB"), quality=95)
    (root / "truncated.jpg").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    good.unlink()
    png = make(root, "tmp.png", Image.effect_noise((32, 32), 60).convert("RGB"))
    data = bytearray(png.read_bytes())
    data[60:90] = b"\x00" * 30  # damage the image data chunk
    (root / "corrupt.png").write_bytes(bytes(data))
    png.unlink()
    return root


@pytest.mark.parametrize("name", ["zero.jpg", "text.jpg", "truncated.jpg", "corrupt.png"])
def test_each_bad_file_is_named(with_bad, name):
    with pytest.raises(BadImageError, match=name) as err:
        load_face(with_bad / name, 8)
    assert err.value.path == with_bad / name
    if name == "zero.jpg":
        assert "empty file" in str(err.value)


def test_bad_file_raises_unless_skip_bad(with_bad, tmp_path):
    with pytest.raises(BadImageError, match=r"cannot decode image file '.*\.(jpg|png)'"):
        build(with_bad, tmp_path, resolution=8)
    with pytest.warns(UserWarning, match="skipped 4 unreadable") as rec:
        ds = build(with_bad, tmp_path, resolution=8, skip_bad=True)
    assert len([w for w in rec if "unreadable" in str(w.message)]) == 1  # warned once
    assert len(ds) == 2 and ds.num_skipped == 4
    assert sorted(p.name for p in ds.skipped_files) == [
        "corrupt.png", "text.jpg", "truncated.jpg", "zero.jpg"]
    assert [p.name for p in ds.files] == ["good1.png", "good2.jpg"]
    # the reloaded cache remembers what was skipped (and warns again)
    with pytest.warns(UserWarning, match=r"skipped 4 unreadable image file\(s\) under '.*bad' "
                      r"\('corrupt.png', 'text.jpg', 'truncated.jpg', \.\.\.\)"):
        again = build(with_bad, tmp_path, resolution=8, skip_bad=True)
    assert again.from_cache and again.num_skipped == 4


def test_all_bad_files(tmp_path):
    root = tmp_path / "allbad"
    root.mkdir()
    (root / "a.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="all 1 image files.*unreadable"):
        build(root, tmp_path, skip_bad=True)


# ---------------------------------------------------------------------------------------------
# CelebA (a fake CelebA folder in torchvision's layout)
# ---------------------------------------------------------------------------------------------


def write_fake_celeba(root: Path) -> dict[str, tuple[int, int]]:
    """Six 178x218 images: split, identity; each with red 20-row bands top and bottom."""
    base = root / "celeba"
    (base / "img_align_celeba").mkdir(parents=True)
    rows = {  # file: (split, identity)
        "000001.jpg": (0, 2880), "000002.jpg": (0, 2937), "000003.jpg": (0, 2880),
        "000004.jpg": (1, 8692), "000005.jpg": (1, 5805), "000006.jpg": (2, 9295),
    }
    for i, name in enumerate(rows):
        im = Image.new("RGB", (178, 218), RED)
        im.paste(Image.new("RGB", (178, 178), (0, 40 * i, 255)), (0, 20))
        im.save(base / "img_align_celeba" / name, quality=95)
    n = len(rows)
    attrs = ["Smiling", "Male", "Young"]
    files = {
        "list_eval_partition.txt": "".join(f"{k} {s}\n" for k, (s, _) in rows.items()),
        "identity_CelebA.txt": "".join(f"{k} {p}\n" for k, (_, p) in rows.items()),
        "list_attr_celeba.txt": f"{n}\n{' '.join(attrs)}\n"
        + "".join(f"{k}  1 -1  1\n" for k in rows),
        "list_bbox_celeba.txt": f"{n}\nimage_id x_1 y_1 width height\n"
        + "".join(f"{k} 95 71 226 313\n" for k in rows),
        "list_landmarks_align_celeba.txt": f"{n}\nlefteye_x lefteye_y righteye_x righteye_y "
        "nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y\n"
        + "".join(f"{k} 69 109 106 113 77 142 73 152 108 154\n" for k in rows),
    }
    assert set(files) == set(ANNOTATION_FILES)
    for name, text in files.items():
        (base / name).write_text(text)
    return rows


def test_celeba_fake_folder(tmp_path, monkeypatch):
    root = tmp_path / "data"
    rows = write_fake_celeba(root)
    kw = dict(check_md5=False, cache_dir=tmp_path / "cache", progress=False, resolution=16)
    train = CelebAFaces(root, "train", **kw)
    assert len(train) == 3 and train.images.shape == (3, 3, 16, 16)
    assert train.identities.tolist() == [2880, 2937, 2880] and train.num_identities == 2
    s = train[1]
    assert s["image"].shape == (3, 16, 16) and s["identity"].item() == 2937
    # the 178x178 centre crop drops the red bands (JPEG blocks may leak a trace into the
    # outermost output rows)
    assert train.images[:, 0, 1:-1].max() < 12 and train.images[:, 0].float().mean() < 8
    assert torch.allclose(to_uint8(s["image"]).mean(dim=(1, 2)), torch.tensor([0.0, 40, 255]),
                          atol=4)
    everything = CelebAFaces(root / "celeba", "all", **kw)  # pointing at celeba/ works too
    assert len(everything) == 6 and everything.files[-1].name == "000006.jpg"
    assert everything.identities.tolist() == [p for _, p in rows.values()]
    sub = CelebAFaces(root, "all", max_images=4, **kw)
    assert len(sub) == 4 and set(sub.files) <= set(everything.files)
    # second construction reads the cache, never the image files
    monkeypatch.setattr("genface.data.celeba.load_face", _decoder_must_not_run)
    again = CelebAFaces(root, "train", **kw)
    assert again.from_cache and torch.equal(again.images, train.images)


def test_celeba_missing_image_with_skip_bad(tmp_path):
    root = tmp_path / "data"
    write_fake_celeba(root)
    (root / "celeba" / "img_align_celeba" / "000002.jpg").unlink()
    kw = dict(check_md5=False, cache=False, progress=False, resolution=8)
    with pytest.raises(BadImageError, match="000002.jpg"):
        CelebAFaces(root, "train", **kw)
    with pytest.warns(UserWarning, match="skipped 1"):
        ds = CelebAFaces(root, "train", skip_bad=True, **kw)
    assert len(ds) == 2 and ds.identities.tolist() == [2880, 2880] and ds.num_skipped == 1


def test_celeba_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        CelebAFaces(tmp_path / "nowhere")
    msg = str(err.value)
    assert "does not download" in msg and "img_align_celeba" in msg
    assert all(name in msg for name in ANNOTATION_FILES)
    root = tmp_path / "data"
    write_fake_celeba(root)
    (root / "celeba" / "identity_CelebA.txt").unlink()
    with pytest.raises(FileNotFoundError, match="missing identity_CelebA.txt"):
        CelebAFaces(root, check_md5=False)
    write_fake_celeba(tmp_path / "d2")
    with pytest.raises(RuntimeError, match="MD5.*check_md5=False"):
        CelebAFaces(tmp_path / "d2", cache=False)  # fake files are not the official ones
    with pytest.raises(ValueError, match="split"):
        CelebAFaces(tmp_path / "d2", split="validation", check_md5=False)


# ---------------------------------------------------------------------------------------------
# Olivetti (fake files) and real-data smoke tests
# ---------------------------------------------------------------------------------------------


def test_olivetti_from_fake_npy(tmp_path):
    faces = np.stack([np.full((64, 64), 10 * i, dtype=np.uint8) for i in range(6)])
    (tmp_path / "olivetti").mkdir()
    np.save(tmp_path / "olivetti" / "olivetti_faces_uint8.npy", faces)
    np.save(tmp_path / "olivetti" / "olivetti_targets.npy", np.array([0, 0, 1, 1, 2, 2]))
    ds = OlivettiFaces(tmp_path, resolution=32)
    assert ds.images.shape == (6, 3, 32, 32) and ds.images.dtype == torch.uint8
    s = ds[3]
    assert s["identity"].item() == 1 and s["identity"].dtype == torch.int64
    assert torch.allclose(to_uint8(s["image"]), torch.full((3, 32, 32), 30.0), atol=0.01)
    assert OlivettiFaces(tmp_path / "olivetti").images.shape == (6, 3, 64, 64)
    with pytest.raises(FileNotFoundError, match="olivetti_faces_uint8.npy"):
        OlivettiFaces(tmp_path / "elsewhere")


def real_data() -> Path:
    root = os.environ.get("GENFACE_DATA")
    if not root:
        pytest.skip("GENFACE_DATA is unset: point it at the shared real-face data folder")
    return Path(root)


@pytest.mark.realdata
def test_real_orl_faces_with_subfolder_labels(tmp_path):
    ds = FolderFaces(real_data() / "orl_faces", resolution=64, labels="subfolders",
                     cache_dir=tmp_path, progress=False)
    assert len(ds) == 400 and ds.images.shape == (400, 3, 64, 64)
    assert len(ds.class_names) == 40 and ds.num_identities == 40
    assert torch.bincount(ds.identities).tolist() == [10] * 40
    assert torch.equal(ds.images[:, 0], ds.images[:, 1])  # greyscale replicated
    assert ds.images.float().std() > 20  # real pictures, not a constant


@pytest.mark.realdata
def test_real_utkface_subset(tmp_path):
    ds = FolderFaces(real_data() / "utkface_adults", resolution=64, max_images=256,
                     cache_dir=tmp_path, progress=False)
    assert len(ds) == 256 and ds.images.shape == (256, 3, 64, 64) and ds.num_skipped == 0
    assert (ds.identities == -1).all()
    assert not torch.equal(ds.images[:, 0], ds.images[:, 2])  # colour photographs
    assert FolderFaces(real_data() / "utkface_adults", resolution=64, max_images=256,
                       cache_dir=tmp_path, progress=False).from_cache


@pytest.mark.realdata
def test_real_olivetti():
    ds = OlivettiFaces(real_data(), resolution=32)
    assert len(ds) == 400 and ds.num_identities == 40 and ds[0]["image"].shape == (3, 32, 32)
