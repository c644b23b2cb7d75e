"""Extraction on tight crops: padded detector retry, padding from the face's size, grey kept,
skipped non-image files reported (real ORL faces, cut tight as Extended Yale B's)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genface.faces.detect import FaceDetector, dlib_available
from genface.faces.extract import extract_faces
from genface.faces.io import read_image

pytestmark = [pytest.mark.skipif(not dlib_available(), reason="needs dlib + face_recognition_models"),
              pytest.mark.realdata]


@pytest.fixture(scope="module")
def tight(tmp_path_factory) -> Path:
    orl = Path(os.environ.get("GENFACE_DATA", "/nonexistent")) / "orl_faces"
    if not orl.is_dir():
        pytest.skip("GENFACE_DATA/orl_faces not found")
    folder = tmp_path_factory.mktemp("tight")
    for i in range(1, 5):
        im = read_image(orl / "s1" / f"{i}.pgm")[..., 0]
        Image.fromarray(im[22:100, 10:82]).save(folder / f"s1_{i}.pgm")  # the face fills the image
    (folder / "s1.info").write_text("not an image")
    (folder / "WS_FTP.LOG").write_text("not an image")
    return folder


def test_padded_retry_finds_faces_the_detector_misses_and_maps_landmarks_back(tight):
    plain, retry = FaceDetector("hog", 68, retry_padding=0), FaceDetector("hog", 68)
    ims = [read_image(p) for p in sorted(tight.glob("*.pgm"))]
    found_plain = sum(bool(plain.detect(im)) for im in ims)
    found = [retry.detect(im) for im in ims]
    assert sum(bool(f) for f in found) > found_plain
    for im, faces in zip(ims, found):
        if faces and faces[0].detector.endswith("+pad"):
            lm = faces[0].landmarks
            h, w = im.shape[:2]
            # mapped back into the original image: the eyes lie inside it
            eyes = np.concatenate([lm[36:48]])
            assert (eyes[:, 0] > 0).all() and (eyes[:, 0] < w).all() and (eyes[:, 1] > 0).all()


def test_auto_padding_grey_crops_and_skipped_files(tight, tmp_path):
    summary = extract_faces(tight, tmp_path / "out", size=64, padding="auto", detector="hog")
    assert summary["skipped_files"] == 2
    assert summary["frames"] == 4 and summary["faces"] >= 2
    assert summary["padding_mode"] == "auto" and -0.1 <= summary["padding"] < 0.15
    doc = json.loads((tmp_path / "out" / "alignments.json").read_text())
    assert sorted(Path(p).name for p in doc["skipped_file_names"]) == ["WS_FTP.LOG", "s1.info"]
    fixed = extract_faces(tight, tmp_path / "fixed", size=64, padding=0.15, detector="hog")
    assert summary["mean_valid_fraction"] > fixed["mean_valid_fraction"]  # more of each crop is real face
    crop = Image.open(next((tmp_path / "out" / "faces").glob("*.png")))
    assert crop.mode == "L"  # a greyscale source gives a greyscale crop
