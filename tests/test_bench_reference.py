"""experiments/bench_reference.py at a tiny size on CPU: genface alone when the reference
checkouts are absent (each skipped with a line saying why), the JSON fields, the kinds timed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "bench_reference.py"


def test_bench_reference_skips_absent_references(tmp_path):
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENFACE_REF_")}
    env["PYTHONPATH"] = str(SCRIPT.parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--resolution", "8", "--batch-size", "4", "--z-dim", "16",
                           "--channel-base", "128", "--channel-max", "8", "--fast-ops", "true", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SKIP rosinality: GENFACE_REF_ROSINALITY is not set" in proc.stdout
    assert "SKIP nvlabs: GENFACE_REF_NVLABS is not set" in proc.stdout
    data = json.loads(out.read_text())
    assert set(data["meta"]["skipped"]) == {"rosinality", "nvlabs"}
    g = data["results"]["genface"]
    assert set(g["median_s"]) == {"plain", "pl", "r1pl"}  # one step of each lazy-regularisation kind
    want = (12 * g["median_s"]["plain"] + 3 * g["median_s"]["pl"] + g["median_s"]["r1pl"]) / 16
    assert abs(g["amortised_s_per_step"] - want) < 1e-9
    assert g["steps_timed"] == 3 and len(g["load1"]) == 4 and g["notes"]["fast_ops"] is True
    assert list(data["results"]) == ["genface"]
