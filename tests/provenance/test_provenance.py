"""Provenance: C2PA signing and verification, tampering, the watermark, the fallback."""

from __future__ import annotations

import io
import json
import logging
import struct
import sys
import zlib
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

from genface import provenance
from genface.provenance import credentials, watermark

pytest.importorskip("c2pa")
pytest.importorskip("imwatermark")


@pytest.fixture(autouse=True)
def _fresh(monkeypatch, tmp_path_factory):
    """Default settings, a private credential cache, and 'say once' messages reset."""
    monkeypatch.setenv("GENFACE_CACHE", str(tmp_path_factory.getbasetemp() / "prov_cache"))
    for var in ("GENFACE_PROVENANCE", "GENFACE_C2PA_CERT", "GENFACE_C2PA_KEY", "GENFACE_C2PA_TRUST"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(provenance, "_settings", None)
    monkeypatch.setattr(provenance, "_said", set())


def _face(size: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth, face-coloured test picture (blobs on a gradient) with some texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.stack([0.75 - 0.2 * y, 0.55 - 0.1 * x, 0.45 + 0.1 * x * y], -1)
    for _ in range(6):
        cy, cx, r = rng.uniform(0.2, 0.8, 2).tolist() + [rng.uniform(0.05, 0.2)]
        img += (rng.uniform(-0.2, 0.2, 3) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / r**2)[..., None])
    img += rng.normal(0, 0.02, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(3, 4)


def _replace_pixels(png: bytes, rgb: np.ndarray) -> bytes:
    """Swap a PNG's IDAT chunks for those of ``rgb`` and keep every other chunk (the manifest)."""
    def chunks(data):
        i, out = 8, []
        while i < len(data):
            n = struct.unpack(">I", data[i:i + 4])[0]
            out.append((data[i + 4:i + 8], data[i + 8:i + 8 + n]))
            i += 12 + n
        return out

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    new_idat = [c for c in chunks(buf.getvalue()) if c[0] == b"IDAT"]
    out, done = [png[:8]], False
    for kind, body in chunks(png):
        if kind == b"IDAT":
            if not done:
                for k, b in new_idat:
                    out.append(struct.pack(">I", len(b)) + k + b + struct.pack(">I", zlib.crc32(k + b)))
                done = True
            continue
        out.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body)))
    return b"".join(out)


def test_signed_png_verifies_with_its_assertions_and_watermark(tmp_path):
    model = _Tiny()
    path = provenance.save_image(_face(), tmp_path / "g.png", provenance.origin(model), {"seed": 3})
    assert provenance.is_marked_png(path)
    rep = provenance.verify(path)
    assert rep.manifest == "valid" and rep.trusted and rep.test_credential, rep.text()
    action = rep.assertions["c2pa.actions.v2"]["actions"][0]
    assert action["action"] == "c2pa.created"
    assert action["digitalSourceType"].endswith("/trainedAlgorithmicMedia")
    ours = rep.assertions[provenance.ASSERTION]
    assert ours["weights_sha256"] == provenance.weights_sha256(model)
    assert ours["model_class"].endswith("_Tiny") and ours["watermark"]["embedded"] is True
    assert rep.claim_generator.startswith("genface")
    assert rep.watermark["found"] and rep.watermark["bit_accuracy"] == 1.0
    assert rep.watermark["model_hash16"] == provenance.weights_sha256(model)[:4]
    assert "TEST credential" in rep.text()


def test_pixel_edit_after_signing_reads_as_tampered(tmp_path):
    path = provenance.save_image(_face(), tmp_path / "g.png")
    edited = np.asarray(Image.open(path).convert("RGB")).copy()
    edited[40:60, 40:60] = 0
    bad = tmp_path / "bad.png"
    bad.write_bytes(_replace_pixels(path.read_bytes(), edited))
    rep = provenance.verify(bad)
    assert rep.manifest == "tampered", rep.text()
    assert any("dataHash.mismatch" in f for f in rep.failures)


def test_jpeg_reencode_drops_the_manifest_but_keeps_the_watermark(tmp_path):
    path = provenance.save_image(_face(256), tmp_path / "g.png")
    Image.open(path).convert("RGB").save(tmp_path / "g.jpg", quality=90)
    rep = provenance.verify(tmp_path / "g.jpg")
    assert rep.manifest == "absent" and rep.watermark["found"], rep.text()


def test_unmarked_picture_has_no_watermark_and_no_manifest(tmp_path):
    Image.fromarray(_face(128, seed=5)).save(tmp_path / "plain.png")
    rep = provenance.verify(tmp_path / "plain.png")
    assert rep.manifest == "absent" and not rep.watermark["found"]
    from genface.cli.provenance import main

    assert main(["verify", str(tmp_path / "plain.png")]) == 1


def test_jpeg_output_is_signed_and_commented(tmp_path):
    path = provenance.save_image(_face(), tmp_path / "g.jpg")
    rep = provenance.verify(path)
    assert rep.manifest == "valid" and rep.watermark["found"]
    assert rep.metadata.get("synthetic") == "true"


@pytest.mark.parametrize("size,expect", [(64, True), (32, False)])
def test_watermark_round_trip_and_small_pictures(tmp_path, size, expect):
    path = provenance.save_image(_face(size), tmp_path / "g.png")
    rep = provenance.verify(path)
    assert rep.manifest == "valid"
    assert rep.assertions[provenance.ASSERTION]["watermark"]["embedded"] is expect
    assert bool(rep.watermark.get("found")) is expect
    if not expect:
        assert "too small" in rep.assertions[provenance.ASSERTION]["watermark"]["note"]


def test_watermark_payload_bits():
    bits = watermark.payload_bits("abcd0123")
    assert len(bits) == 40 and np.packbits(bits).tobytes() == b"gf\x01\xab\xcd"
    marked = watermark.embed(_face(128), "abcd0123")
    assert np.abs(marked.astype(int) - _face(128).astype(int)).mean() < 3  # invisible-ish
    det = watermark.detect(marked, "abcd0123")
    assert det.found and det.bit_accuracy == 1.0 and det.model_hash16 == "abcd"
    with pytest.raises(ValueError, match="too small"):
        watermark.embed(_face(32), None)
    import cv2

    half = cv2.resize(marked, (64, 64), interpolation=cv2.INTER_AREA)  # a 0.5x thumbnail
    assert not watermark.detect(half, retry_scales=()).found
    again = watermark.detect(half, "abcd0123")
    assert again.found and "rescale" in again.note


def test_video_frames_watermarked_and_file_signed(tmp_path):
    from genface.faces.io import VideoWriter

    src = tmp_path / "src.mp4"
    with VideoWriter(src, Fraction(10)) as w:
        w.write(_face(128, seed=9))
    org = provenance.origin(_Tiny(), "swapped", "test swap", source=src)
    out = tmp_path / "v.mp4"
    with VideoWriter(out, Fraction(10), origin=org) as w:
        for i in range(4):
            w.write(_face(128, seed=i))
    rep = provenance.verify(out)
    assert rep.manifest == "valid", rep.text()
    opened, action = rep.assertions["c2pa.actions.v2"]["actions"]
    assert opened["action"] == "c2pa.opened" and action["action"] == "c2pa.edited"
    assert action["digitalSourceType"].endswith("/compositeWithTrainedAlgorithmicMedia")
    assert rep.watermark["found"] and rep.watermark["frames"] == 4
    assert rep.metadata.get("synthetic") == "true"
    # flip one byte of the coded frames: the BMFF hash no longer matches
    data = bytearray(out.read_bytes())
    data[data.find(b"mdat") + 200] ^= 0xFF
    (tmp_path / "bad.mp4").write_bytes(bytes(data))
    store = credentials.read(tmp_path / "bad.mp4", credentials.test_root_pem())
    assert store["state"] == "Invalid"
    assert any("mismatch" in f["code"] for f in store["results"]["activeManifest"]["failure"])


def test_without_c2pa_genface_falls_back_and_says_so_once(tmp_path, monkeypatch, caplog):
    real_c2pa = sys.modules.get("c2pa")
    monkeypatch.setitem(sys.modules, "c2pa", None)  # `import c2pa` now raises ImportError
    with caplog.at_level(logging.WARNING, logger="genface.provenance"):
        a = provenance.save_image(_face(), tmp_path / "a.png")
        b = provenance.save_image(_face(), tmp_path / "b.png")
        rep = provenance.verify(a)
    said = [r for r in caplog.records if "credentials are OFF" in r.getMessage()]
    assert len(said) == 1
    assert provenance.is_marked_png(a) and provenance.is_marked_png(b)
    assert rep.manifest == "unavailable" and rep.watermark["found"]
    monkeypatch.setitem(sys.modules, "c2pa", real_c2pa)
    assert credentials.read(a) is None  # really written without a manifest


def test_without_invisible_watermark_files_are_still_signed(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "imwatermark.dwtDctSvd", None)
    with caplog.at_level(logging.WARNING, logger="genface.provenance"):
        rep = provenance.verify(provenance.save_image(_face(), tmp_path / "a.png"))
    assert sum("watermark is OFF" in r.getMessage() for r in caplog.records) == 1
    assert rep.manifest == "valid" and rep.assertions[provenance.ASSERTION]["watermark"]["embedded"] is False
    assert "not installed" in rep.watermark["note"]


def test_turning_marks_off_is_explicit_and_logged(tmp_path, monkeypatch, caplog):
    with caplog.at_level(logging.WARNING, logger="genface.provenance"):
        provenance.configure(watermark=False)
    assert any("invisible watermark turned OFF" in r.getMessage() for r in caplog.records)
    rep = provenance.verify(provenance.save_image(_face(), tmp_path / "g.png"))
    assert rep.manifest == "valid" and not rep.watermark["found"]
    monkeypatch.setattr(provenance, "_settings", None)
    monkeypatch.setenv("GENFACE_PROVENANCE", "metadata-only")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="genface.provenance"):
        s = provenance.settings()
    assert not s.c2pa and not s.watermark
    assert any("C2PA content credentials and the invisible watermark turned OFF" in r.getMessage()
               for r in caplog.records)
    monkeypatch.setattr(provenance, "_settings", None)
    monkeypatch.setenv("GENFACE_PROVENANCE", "of")
    with pytest.raises(ValueError, match="GENFACE_PROVENANCE"):
        provenance.settings()
    monkeypatch.delenv("GENFACE_PROVENANCE")
    with pytest.raises(TypeError, match="unknown"):
        provenance.configure(c2p=False)


def test_user_credential_signs_and_reads_untrusted_without_its_root(tmp_path):
    chain, key, root = credentials.make_test_credential()
    (tmp_path / "c.pem").write_bytes(chain)
    (tmp_path / "k.pem").write_bytes(key)
    provenance.configure(cert=str(tmp_path / "c.pem"), key=str(tmp_path / "k.pem"))
    rep = provenance.verify(provenance.save_image(_face(), tmp_path / "g.png"))
    # signature and hashes hold; its root is neither the SDK's nor this machine's test root
    assert rep.manifest == "untrusted" and not rep.trusted, rep.text()
    assert [f.split(":")[0] for f in rep.failures] == ["signingCredential.untrusted"]
    (tmp_path / "root.pem").write_bytes(root)
    provenance.configure(trust=str(tmp_path / "root.pem"))
    rep = provenance.verify(tmp_path / "g.png")
    assert rep.manifest == "valid" and rep.trusted, rep.text()


def test_save_pretrained_header_carries_provenance(tmp_path):
    from safetensors import safe_open

    from genface.models.dcgan import DCGAN

    model = DCGAN(resolution=32, z_dim=8, ngf=8, ndf=8)
    model.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta["synthetic"] == "true" and meta["model_class"].endswith("DCGAN")
    assert meta["weights_sha256"] == provenance.weights_sha256(model)
    assert json.dumps(provenance.model_metadata(model))  # serialisable for a model card


@pytest.mark.slow
def test_sample_grid_hash_is_the_exported_models_hash(make_cfg):
    """The final sample grid records the weights ``export_pretrained`` writes (EMA generator included)."""
    from safetensors import safe_open

    from genface.cli.train import train

    result = train(make_cfg("dcgan"))
    assert result["module"].G_ema is not None  # the GAN module keeps an EMA generator by default
    out = result["output_dir"]
    grid = sorted((out / "samples").glob("*.png"))[-1]
    rep = provenance.verify(grid)
    with safe_open(str(out / "pretrained" / "model.safetensors"), "pt") as f:
        header = f.metadata()
    assert rep.manifest == "valid"
    assert rep.assertions[provenance.ASSERTION]["weights_sha256"] == header["weights_sha256"]
    assert header["weights_sha256"] != provenance.weights_sha256(result["module"].net)  # not the raw G
