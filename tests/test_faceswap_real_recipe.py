"""The real-pair FaceSwap recipes (experiment=faceswap_real / faceswap_real_orl) and their tools."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from PIL import Image

from genface.config import validate_config
from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parents[1]


def _experiment_script():
    spec = importlib.util.spec_from_file_location("faceswap_real", ROOT / "experiments" / "faceswap_real.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _orl_like(root: Path, people: int = 3, photos: int = 10, size: int = 32) -> None:
    rng = np.random.default_rng(0)
    for p in range(1, people + 1):
        d = root / f"s{p}" / "faces"
        d.mkdir(parents=True)
        for k in range(1, photos + 1):
            Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(d / f"{k}_{k:06d}_0.png")


@pytest.mark.parametrize("name", ["faceswap_real", "faceswap_real_orl"])
def test_real_pair_recipes_validate(name, tmp_path):
    over = [f"experiment={name}", "data.gallery_dir=/g"]
    if name == "faceswap_real":
        over += ["data.dir_a=/g/yaleB11/faces", "data.dir_b=/g/yaleB12/faces"]
    cfg = compose_config("train", over, tmp_path)
    validate_config(cfg)
    assert cfg.model.net.resolution == cfg.data.resolution == 64
    assert cfg.data.landmarks and cfg.model.lr > 5e-5  # faceswap's 5e-5 is too slow for a CPU budget


def test_orl_recipe_holds_out_three_of_ten_and_fills_an_epoch(tmp_path):
    """Ten photos a person: 3 held out per side, and the 7 + 7 left still make full batches."""
    _orl_like(tmp_path / "orl")
    cfg = compose_config("train", ["experiment=faceswap_real_orl", f"data.gallery_dir={tmp_path / 'orl'}",
                                   "data.resolution=32", "data.landmarks=false"], tmp_path / "run")
    assert cfg.data.dir_a == f"{tmp_path / 'orl'}/s1/faces"
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup()
    assert len(dm.val_a) == len(dm.val_b) == 3
    assert len(dm.train_set) == 400 >= dm.batch_size
    ev = dm.swap_eval_data()
    assert len(ev.faces_a) == 3
    # the gallery has every identity, without the held-out faces (nor B's baseline photos)
    assert sorted(set(ev.gallery_labels.tolist())) == [0, 1, 2]
    assert len(ev.gallery) == 30 - 3 - 3 - int(ev.b_valid.sum())


def test_pan_video_has_the_frames_and_size_asked(tmp_path):
    pytest.importorskip("av")
    from genface.faces.io import VideoReader

    photo = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (56, 46), dtype=np.uint8)).save(photo)
    out = _experiment_script().make_pan_video(str(photo), str(tmp_path / "a.mp4"), frames=12)
    with VideoReader(out) as r:
        frames = list(r)
    assert len(frames) == 12 and frames[0].shape == (112, 92, 3)
    assert np.abs(frames[0].astype(int) - frames[3].astype(int)).mean() > 1  # it moves


def test_resumed_metrics_are_cut_where_the_next_part_starts(tmp_path):
    """A resume restarts metrics.csv from the last checkpoint: the older part's later steps go."""
    parts = []
    for k, steps in enumerate(([9, 99, 199, 299], [199, 299, 399])):
        p = tmp_path / f"m{k}.csv"
        p.write_text("step,val/x\n" + "".join(f"{s},{k}\n" for s in steps))
        parts.append(p)
    rows = _experiment_script().read_metrics(parts)
    assert [(int(r["step"]), r["val/x"]) for r in rows] == [(9, "0"), (99, "0"), (199, "1"), (299, "1"), (399, "1")]


def test_table_gives_counts_beside_rates():
    m = {"swap_id_dlib": 5 / 12, "swap_id_dlib/detected": 0.5, "swap_id_dlib/num_swaps": 12,
         "swap_id_dlib/b2a_top1": 0.75, "swap_id_dlib/num_b2a": 12, "swap_id_dlib/real_b_detected": 0.7,
         "swap_id_dlib/real_b_num": 10, "swap_pose_dlib": 0.063, "swap_pose_dlib/num_pairs": 5}
    t = _experiment_script().table(m)
    assert "42 % (5 of 12)" in t and "50 % (6 of 12)" in t and "75 % (9 of 12)" in t
    assert "70 % (7 of 10)" in t and "0.063 (5 pairs)" in t
