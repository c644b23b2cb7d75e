"""The quick-start notebook (docs/quickstart.ipynb) runs top to bottom and shows images."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is in the dev extra")
nbclient = pytest.importorskip("nbclient", reason="nbclient is in the dev extra")
pytest.importorskip("ipykernel", reason="ipykernel is in the dev extra")

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "quickstart.ipynb"


def _kernel_name(tmp_path: Path, monkeypatch) -> str:
    """A kernel spec named python3 that runs this interpreter (the venv), wherever jupyter looks."""
    kernels = tmp_path / "jupyter" / "kernels" / "python3"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (genface tests)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "python3"


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "the quick-start notebook has no code cells"
    assert all(not c.outputs and c.execution_count is None for c in code), \
        "commit docs/quickstart.ipynb without outputs (clear them before committing)"


@pytest.mark.slow  # about 25 s: a kernel start and two short training runs
def test_quickstart_notebook_runs_and_shows_images(tmp_path, monkeypatch, synthetic_cache):
    kernel = _kernel_name(tmp_path, monkeypatch)
    # one OpenMP thread in the kernel: on a small shared machine two threads can be far slower
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("GENFACE_LOG_DIR", str(tmp_path / "logs"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name=kernel,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError (with the cell and traceback) on any error

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = [o for c in code for o in c.outputs
              if o.output_type in ("display_data", "execute_result") and "image/png" in o.get("data", {})]
    # the data grid, DCGAN samples, VAE samples, reconstructions, interpolations
    assert len(images) >= 5, f"expected >= 5 image outputs, got {len(images)}"
    text = "".join(o.get("text", "") for c in code for o in c.outputs if o.output_type == "stream")
    assert "trained 150 steps" in text and "trained 120 steps" in text  # DCGAN, VAE
    assert "config.json" in text and "model.safetensors" in text
    # the notebook itself must not be edited by running it
    assert nbformat.read(NOTEBOOK, as_version=4).cells[1].outputs == []
