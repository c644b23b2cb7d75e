"""genface-compare end to end on a tiny budget: report, results, grids, curves, resume."""

import json

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from genface.cli import compare
from genface.provenance import is_marked_png


def _cfg(out, *extra):
    GlobalHydra.instance().clear()
    initialize_config_module(config_module="genface.configs", version_base="1.3")
    return compose("compare", overrides=[
        f"out_dir={out}", "models=[dcgan,vae]", "budget_images=96", "batch_size=16", "grid_samples=4",
        "metrics=[msssim_pairs1k,recon1k,fid1k_full]",
        "overrides=['data.dataset.num_images=128','data.dataset.num_identities=8','data.val_size=16',"
        "'trainer.enable_progress_bar=false','trainer.enable_model_summary=false','~callbacks.rich_progress_bar']",
        *extra,
    ])


@pytest.mark.slow
def test_compare_writes_a_full_report_and_resumes(tmp_path, synthetic_cache, monkeypatch):
    rows = compare.run_compare(_cfg(tmp_path))
    assert [r["model"] for r in rows] == ["dcgan", "vae"]
    report = (tmp_path / "report.md").read_text()
    for text in ["| dcgan |", "| vae |", "msssim_pairs1k", "recon1k/mae", "images/s", "d_loss ", "recon "]:
        assert text in report, text
    # FID needs the Inception weights, which are not here: it is listed as not computed, with the reason
    assert "fid1k_full" in report.split("Metrics not computed")[1]
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    dcgan = results[0]
    assert dcgan["parameters"]["generator"] + dcgan["parameters"]["discriminator"] == dcgan["parameters"]["total"]
    assert dcgan["steps"] == 6 and dcgan["images_per_s"] > 0
    assert 0 <= dcgan["metrics"]["msssim_pairs1k"] <= 1
    assert "recon1k/mae" in results[1]["metrics"] and "recon1k/mae" not in dcgan["metrics"]
    for r in results:
        assert is_marked_png(r["grid"])
    assert (tmp_path / "samples_side_by_side.png").is_file() and (tmp_path / "loss_curves.png").is_file()

    # a second run reuses the finished models instead of training them again
    monkeypatch.setattr(compare, "train_one", lambda *a, **k: pytest.fail("retrained a finished model"))
    again = compare.run_compare(_cfg(tmp_path))
    assert [r["images_per_s"] for r in again] == [r["images_per_s"] for r in rows]


def test_final_losses_average_the_tail(tmp_path):
    csv = tmp_path / "metrics.csv"
    csv.write_text("step,train/d_loss,train/g_loss,val/x\n" + "".join(f"{i},{i},{2 * i},\n" for i in range(20)))
    losses = compare.final_losses(csv, tail=0.1)
    assert losses == {"d_loss": 18.5, "g_loss": 37.0}
