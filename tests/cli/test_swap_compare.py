"""The swapper comparison: the side-by-side grid of the same faces swapped by each method,
and genface-compare's compare_swappers preset end to end on a tiny budget."""

import json

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from genface.cli import compare
from genface.data.swap import SwapDataModule
from genface.data.synthetic import SyntheticFaces
from genface.models.cyclegan import CycleGAN
from genface.models.faceswap import FaceSwap
from genface.provenance import is_marked_png
from genface.swap_grid import render_swap_grid, swap_faces_for, swap_rows


def test_grid_rows_hold_each_methods_swaps_of_the_same_faces(tmp_path, synthetic_cache):
    torch.manual_seed(0)
    nets = {"faceswap": FaceSwap(resolution=32, width=0.0625), "cyclegan": CycleGAN(resolution=32, ngf=4, ndf=4,
                                                                                        n_blocks=1)}
    faces = SyntheticFaces(num_images=40, num_identities=2, resolution=32, cache=False)
    dm = SwapDataModule(dataset=faces, resolution=32, batch_size=4, val_size=4)
    src = swap_faces_for(dm, n=3)
    assert set(src) == {"image_a", "image_b", "a_as_b", "b_as_a"}  # synthetic: the exact swaps too
    rows = swap_rows(nets, src["image_a"], src["image_b"], src["a_as_b"], src["b_as_a"])
    assert [r[0] for r in rows] == ["A", "A->B truth", "A->B faceswap", "A->B cyclegan",
                                    "B", "B->A truth", "B->A faceswap", "B->A cyclegan"]
    torch.testing.assert_close(rows[2][1], nets["faceswap"].swap(src["image_a"], to=1))
    torch.testing.assert_close(rows[7][1], nets["cyclegan"].swap(src["image_b"], to=0))
    path = render_swap_grid(rows, tmp_path / "grid.png")
    assert is_marked_png(path)
    with Image.open(path) as im:
        assert im.size[1] > im.size[0] / 2  # eight rows of three faces: taller than half its width
    real = SwapDataModule(dataset_a=torch.utils.data.Subset(faces, range(0, 40, 2)),
                          dataset_b=torch.utils.data.Subset(faces, range(1, 40, 2)), resolution=32, batch_size=4,
                          val_size=4)
    assert set(swap_faces_for(real, n=2)) == {"image_a", "image_b"}  # no ground truth: validation faces


def _cfg(out, *extra):
    GlobalHydra.instance().clear()
    initialize_config_module(config_module="genface.configs", version_base="1.3")
    return compose("compare_swappers", overrides=[
        f"out_dir={out}", "budget_images=64", "batch_size=16", "grid_samples=4",
        "overrides=['data.dataset.num_images=80','data.val_size=8','trainer.enable_progress_bar=false',"
        "'trainer.enable_model_summary=false','~callbacks.rich_progress_bar','model.swap_eval_samples=4']",
        *extra,
    ])


def test_preset_names_the_three_swappers(tmp_path):
    cfg = _cfg(tmp_path)
    assert list(cfg.models) == ["faceswap", "faceswap_gan", "cyclegan"] and cfg.data_config == "synthetic_swap"


@pytest.mark.slow
def test_compare_swappers_reports_a_row_per_method_with_swap_scores(tmp_path, synthetic_cache):
    rows = compare.run_compare(_cfg(tmp_path))
    assert [r["model"] for r in rows] == ["faceswap", "faceswap_gan", "cyclegan"]
    for r in rows:
        assert {"swap_synth_gt", "swap_synth_gt/noswap_mae"} <= set(r["metrics"]), r["model"]
    report = (tmp_path / "report.md").read_text()
    assert all(f"| {m} |" in report for m in ("faceswap", "faceswap_gan", "cyclegan"))
    assert "## Swaps side by side" in report and is_marked_png(tmp_path / "swaps_side_by_side.png")
    assert "cyclegan / `recon1k`: needs ['autoencoder']" in report
    assert json.loads((tmp_path / "results.json").read_text())["results"][2]["net"] == "CycleGAN"
