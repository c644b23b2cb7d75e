"""Property-based fuzzing of bad inputs (issue 12): every run trains or fails with a genface error
naming the culprit, and no traceback would reach the user.

Hypothesis draws a folder of face images holding one odd file (random bytes, a truncated PNG or
JPEG, an empty file, an odd mode such as 16-bit, 1-bit, palette with transparency or
CMYK, an odd size such as 1x1 or 1x300) and a few config overrides (batch size, resolution,
validation size, max_images, skip_bad, some of them invalid). Each example either trains one
step of a tiny VAE or raises an error that :func:`genface.cli._guard.is_user_facing` accepts
(the CLI prints such errors as their message alone) and whose message names the bad file or
the bad key. Bounded: ``max_examples`` is small and the whole test takes a few seconds.
"""

from __future__ import annotations

import io
import shutil
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf, open_dict
from PIL import Image

from genface.cli._guard import is_user_facing
from genface.cli.train import train
from tests.conftest import compose_config

ODD_VALID = ("I;16", "1", "P_transparent", "LA", "CMYK", "1x1", "1x300", "300x1")
CORRUPT = ("random_bytes", "truncated_png", "truncated_jpeg", "empty", "text")


def _image_bytes(kind: str, cut: float, noise: bytes) -> tuple[str, bytes]:
    """``(file name, content)`` of one odd file."""
    rng = np.random.default_rng(len(noise))
    buf = io.BytesIO()
    if kind == "I;16":
        Image.fromarray(rng.integers(0, 65535, (24, 24), dtype=np.uint16)).save(buf, "PNG")
    elif kind == "1":
        Image.fromarray(rng.integers(0, 2, (24, 24)).astype(bool)).save(buf, "PNG")
    elif kind == "P_transparent":
        im = Image.new("P", (24, 24), 3)
        im.info["transparency"] = 3
        im.save(buf, "PNG", transparency=3)
    elif kind == "LA":
        Image.new("LA", (24, 24), (120, 60)).save(buf, "PNG")
    elif kind == "CMYK":
        Image.new("CMYK", (24, 24), (10, 200, 30, 5)).save(buf, "JPEG")
        return "odd.jpg", buf.getvalue()
    elif kind in ("1x1", "1x300", "300x1"):
        w, h = (int(v) for v in kind.split("x"))
        Image.new("RGB", (w, h), (200, 100, 50)).save(buf, "PNG")
    elif kind == "random_bytes":
        return "odd.png", noise
    elif kind == "truncated_png":
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(buf, "PNG")
        data = buf.getvalue()
        return "odd.png", data[: max(1, int(len(data) * cut))]
    elif kind == "truncated_jpeg":
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(buf, "JPEG")
        data = buf.getvalue()
        return "odd.jpg", data[: max(1, int(len(data) * cut))]
    elif kind == "empty":
        return "odd.png", b""
    elif kind == "text":
        return "odd.jpg", b"<html>not an image</html>"
    return "odd.png", buf.getvalue()


@pytest.fixture(scope="module")
def base_cfg(tmp_path_factory):
    cache = tmp_path_factory.mktemp("fuzz_cache")
    return compose_config("train", [
        "model=vae", "data=folder", "data.path=PLACEHOLDER", "logger=none", "callbacks=none",
        "export_pretrained=false", "model.net.widths=[8,16,32]", "model.net.z_dim=8",
        "data.resolution=32", "data.batch_size=4", "data.val_size=2", f"+data.dataset.cache_dir={cache}",
        "+data.dataset.progress=false", "+data.dataset.num_workers=0",
        "trainer.max_steps=1", "trainer.limit_val_batches=0", "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false", "+trainer.enable_checkpointing=false",
    ], tmp_path_factory.mktemp("fuzz_run"))


BAD_VALUES = {"batch_size": [-2, 0], "resolution": [0, -32], "val_size": [-1], "max_images": [0, -3]}


@settings(max_examples=14, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    kind=st.sampled_from(ODD_VALID + CORRUPT),
    cut=st.floats(0.05, 0.95),
    noise=st.binary(min_size=1, max_size=64),
    # at most one invalid override, in about 4 examples of 10 (the rest should train)
    bad_key=st.sampled_from([None, None, None, None, None, None, *BAD_VALUES]),
    bad_pick=st.integers(0, 1),
    batch_size=st.sampled_from([1, 4, 4, 64]),
    val_size=st.sampled_from([0, 2]),
    max_images=st.sampled_from([None, None, 5]),
    skip_bad=st.booleans(),
)
def test_every_run_trains_or_names_the_culprit(base_cfg, tmp_path, kind, cut, noise, bad_key, bad_pick,
                                               batch_size, val_size, max_images, skip_bad):
    values = {"batch_size": batch_size, "resolution": 32, "val_size": val_size, "max_images": max_images}
    if bad_key is not None:
        choices = BAD_VALUES[bad_key]
        values[bad_key] = choices[bad_pick % len(choices)]
    folder = tmp_path / "faces"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for i in range(7):
        Image.new("RGB", (20 + i, 24), (30 * i, 90, 160)).save(folder / f"good{i}.png")
    name, data = _image_bytes(kind, cut, noise)
    (folder / name).write_bytes(data)

    cfg = OmegaConf.create(OmegaConf.to_container(base_cfg))
    with open_dict(cfg):
        cfg.data.path = str(folder)
        cfg.data.batch_size = values["batch_size"]
        cfg.data.resolution = values["resolution"]
        cfg.data.val_size = values["val_size"]
        cfg.data.dataset.max_images = values["max_images"]
        cfg.data.dataset.skip_bad = skip_bad
        cfg.paths.output_dir = str(tmp_path / "run")
    culprits = {k: k == bad_key for k in BAD_VALUES}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = train(cfg)
    except Exception as e:  # noqa: BLE001 - the property is about every exception
        msg = str(e)
        assert is_user_facing(e), f"{type(e).__name__} would reach the user with a traceback: {msg}"
        if bad_key is not None:
            assert bad_key in msg, f"{bad_key}={values[bad_key]}: the message does not name it: {msg}"
        elif kind in CORRUPT and not skip_bad:
            assert name in msg, f"{kind}: the message does not name the file {name}: {msg}"
        else:  # nothing invalid but the batch: only a batch larger than the training set may fail
            assert values["batch_size"] == 64 and "batch_size" in msg, f"{kind}: unexpected failure: {msg}"
        return
    # it trained: then nothing was invalid, and a corrupt file was skipped (or sampled out)
    assert not any(culprits.values()), culprits
    assert result["trainer"].global_step == 1
    assert bad_key is None and not (kind in CORRUPT and not skip_bad and max_images is None)
    if kind in CORRUPT and skip_bad and max_images is None:
        assert result["datamodule"].dataset.num_skipped == 1
