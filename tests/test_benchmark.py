"""experiments/benchmark.py at a tiny size on CPU: the JSON has every field (no timing asserts)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "benchmark.py"
TINY = ["--resolutions", "32", "--batch-size", "8", "--steps", "2", "--warmup", "1", "--threads", "1",
        "--override", "dcgan:model.net.ngf=8", "dcgan:model.net.ndf=8", "dcgan:model.net.z_dim=16",
        "vae:model.net.widths=[8,16,32]", "vae:model.net.z_dim=8"]
FIELDS = {"model", "resolution", "batch_size", "device", "amp", "compile", "channels_last", "steps",
          "warmup", "error", "params", "train_step_s_median", "train_step_s_mean", "train_images_per_s",
          "generate_batch_s_median", "generate_images_per_s", "peak_mem_train_mib",
          "peak_mem_generate_mib", "peak_rss_mib", "rss_before_mib", "threads"}


def _load():
    spec = importlib.util.spec_from_file_location("genface_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(args, tmp_path, synthetic_cache):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), *args, "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    return proc, out


def test_benchmark_cpu_json_fields(tmp_path, synthetic_cache):
    proc, out = _run(["--models", "dcgan", "vae", "--in-process", *TINY], tmp_path, synthetic_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert {"torch", "threads", "args", "cpu_count"} <= set(data["meta"])
    rows = data["results"]
    assert [(r["model"], r["resolution"]) for r in rows] == [("dcgan", 32), ("vae", 32)]
    for r in rows:
        assert FIELDS <= set(r), FIELDS - set(r)
        assert r["error"] is None and r["device"] == "cpu" and r["batch_size"] == 8
        assert r["train_step_s_median"] > 0 and r["generate_batch_s_median"] > 0
        assert r["train_images_per_s"] == pytest.approx(8 / r["train_step_s_median"])
        assert r["generate_images_per_s"] == pytest.approx(8 / r["generate_batch_s_median"])
        assert r["peak_mem_train_mib"] is None  # CUDA only
        assert r["peak_rss_mib"] >= r["rss_before_mib"] > 0
        assert r["threads"] == 1
    # the overrides reached the right model: DCGAN's parameter count follows ngf = ndf = 8
    from genface.models.dcgan import DCGAN
    from genface.models.vae import VAE

    dcgan = DCGAN(resolution=32, ngf=8, ndf=8, z_dim=16)
    assert rows[0]["params"] == sum(p.numel() for p in dcgan.parameters())
    vae = VAE(resolution=32, widths=[8, 16, 32], z_dim=8)
    assert rows[1]["params"] == sum(p.numel() for p in vae.parameters())
    assert "train s/step" in proc.stdout  # the printed table


def test_failed_case_is_reported_not_fatal(tmp_path, synthetic_cache):
    """A case that cannot run is a row with its error (naming the valid models) and rc = 1."""
    out = tmp_path / "bench.json"
    rc = _load().main(["--models", "nosuchmodel", "--in-process", "--quiet", *TINY, "--out", str(out)])
    assert rc == 1
    row = json.loads(out.read_text())["results"][0]
    assert row["model"] == "nosuchmodel" and "unknown model" in row["error"] and "dcgan" in row["error"]


def test_per_model_overrides_and_argument_stripping():
    bench = _load()
    assert bench._strip(["--models", "a", "b", "--steps", "2", "--out=x.json", "--resolutions", "32"],
                        ("--models", "--resolutions", "--out")) == ["--steps", "2"]
    assert "dcgan" in bench.available_models() and "vae" in bench.available_models()
    with pytest.raises(SystemExit):
        bench.parse_args(["--steps", "0"])


@pytest.mark.slow
def test_benchmark_isolated_subprocess_per_case(tmp_path, synthetic_cache):
    """The default mode runs each case in its own process (so ru_maxrss is that case's peak)."""
    proc, out = _run(["--models", "dcgan", *TINY], tmp_path, synthetic_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = json.loads(out.read_text())["results"]
    assert row["error"] is None and row["model"] == "dcgan" and row["peak_rss_mib"] > 0
