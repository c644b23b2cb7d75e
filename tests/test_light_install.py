"""The light core install: no torchvision and no matplotlib on the training path.

- :func:`genface.utils.make_grid` gives torchvision's grids, bit for bit (when torchvision
  imports), so the sample grids did not change when torchvision left the core;
- without matplotlib (the ``plots`` extra) genface-compare's report and swap grid are written
  without figures, with one line naming the extra; ``pyplot`` raises the same message;
- without torchvision (the ``vision`` extra) ``data=celeba`` and ``perceptual=vgg16`` fail with
  one line naming it;
- a DCGAN training step and its sample grid run with torchvision and matplotlib blocked (what
  the CPU-only install in docs/installation.md relies on).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

from genface import report
from genface.utils import MissingExtraError, make_grid, missing_extra, pyplot


class _NotInstalled:
    """A meta-path finder that answers as if the packages ``names`` were not installed."""

    def __init__(self, names):
        self.names = set(names)

    def find_spec(self, fullname, path=None, target=None):
        if fullname in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def _block(monkeypatch, *names, reimport=()):
    """Make ``import name`` (and its submodules) fail as when the package is not installed;
    the packages ``reimport`` are forgotten too, so that they are imported again under the block."""
    for mod in list(sys.modules):
        if mod.split(".")[0] in {*names, *reimport}:
            monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(sys, "meta_path", [_NotInstalled(names), *sys.meta_path])


@pytest.mark.parametrize("n,nrow,padding,pad_value,channels", [
    (7, 3, 2, 1.0, 3), (16, 4, 2, -1.0, 3), (5, 8, 0, 0.0, 1), (1, 8, 2, 1.0, 3), (4, 2, 3, 0.5, 3)])
def test_make_grid_matches_torchvision(n, nrow, padding, pad_value, channels):
    tv = pytest.importorskip("torchvision.utils")
    x = torch.rand(n, channels, 5, 6)
    ours = make_grid(x, nrow=nrow, padding=padding, pad_value=pad_value)
    theirs = tv.make_grid(x, nrow=nrow, padding=padding, pad_value=pad_value)
    assert ours.shape == theirs.shape
    assert torch.equal(ours, theirs)
    assert torch.equal(make_grid(list(x), nrow=nrow, padding=padding, pad_value=pad_value), theirs)


def test_make_grid_layout_without_torchvision():
    x = torch.arange(3, dtype=torch.float32).view(3, 1, 1, 1).expand(3, 3, 2, 2)
    g = make_grid(x, nrow=2, padding=1, pad_value=-5.0)
    assert g.shape == (3, 2 * 3 + 1, 2 * 3 + 1)
    assert g[0, 1, 1] == 0 and g[0, 1, 4] == 1 and g[0, 4, 1] == 2
    assert g[0, 4, 4] == -5.0 and g[0, 0, 0] == -5.0  # the empty cell and the border are padding


def test_pyplot_without_matplotlib_names_the_plots_extra(monkeypatch):
    _block(monkeypatch, "matplotlib")
    with pytest.raises(MissingExtraError, match=r"pip install 'genface\[plots\]'"):
        pyplot("a figure")
    msg = missing_extra("matplotlib", feature="genface-compare's figures")
    assert msg == ("genface-compare's figures needs 'matplotlib', which is not installed: "
                   "pip install 'genface[plots]'")


def test_report_without_matplotlib_skips_the_figures_with_one_line(monkeypatch, tmp_path, capsys):
    rows = [{"model": m, "seed": 0, "parameters": {"total": 1}, "images": 100, "images_per_s": 1.0, "train_time_s": 1.0,
             "wall_time_s": 1.0, "final_losses": {"loss": 1.0}, "metrics": {"fsd_synth1k": v}} for m, v in
            (("dcgan", 2.0), ("vae", 3.0))]
    _block(monkeypatch, "matplotlib")
    path = report.write_report({"metrics": ["fsd_synth1k"], "seeds": [0]}, rows, tmp_path)
    out = capsys.readouterr().out.strip().splitlines()
    skipped = [line for line in out if "figures skipped" in line]
    assert skipped == ["figures skipped: genface-compare's figures needs 'matplotlib', which is not installed: "
                       "pip install 'genface[plots]'"]
    text = path.read_text()
    assert "## Every run" in text and "Figures skipped:" in text and "genface[plots]" in text
    assert "## Loss curves" not in text
    assert not list(tmp_path.glob("*.png"))
    assert (tmp_path / "results.json").is_file()


def test_report_with_matplotlib_draws_the_loss_curves(tmp_path):
    pytest.importorskip("matplotlib")
    rows = [{"model": "dcgan", "seed": 0, "parameters": {"total": 1}, "images": 100, "images_per_s": 1.0,
             "train_time_s": 1.0, "wall_time_s": 1.0, "final_losses": {"loss": 1.0}, "metrics": {}}]
    text = report.write_report({"metrics": [], "seeds": [0]}, rows, tmp_path).read_text()
    assert "## Loss curves" in text and "Figures skipped" not in text
    assert (tmp_path / "loss_curves.png").is_file()


def test_swap_grid_without_matplotlib_is_skipped_with_one_line(monkeypatch, tmp_path, capsys):
    from genface.swap_grid import write_swap_grid

    _block(monkeypatch, "matplotlib")
    assert write_swap_grid(None, [], tmp_path) is None  # returns before reading cfg or rows
    assert capsys.readouterr().out.strip() == (
        "swap grid skipped: the swap grid needs 'matplotlib', which is not installed: pip install 'genface[plots]'")


def test_celeba_and_vgg_without_torchvision_name_the_vision_extra(monkeypatch, tmp_path):
    _block(monkeypatch, "torchvision")
    monkeypatch.delitem(sys.modules, "genface.data.celeba", raising=False)
    with pytest.raises(MissingExtraError, match=r"data=celeba needs 'torchvision'.*pip install 'genface\[vision\]'"):
        importlib.import_module("genface.data.celeba")
    from genface.training.faceswap_gan import _vgg16_relu3_3

    with pytest.raises(MissingExtraError, match=r"perceptual=vgg16 needs 'torchvision'.*genface\[vision\]"):
        _vgg16_relu3_3(str(tmp_path / "vgg16.pth"))


_HIDDEN = ("torchvision", "matplotlib", "mpl_toolkits", "pylab")


def _site_without(tmp_path, hidden=_HIDDEN):
    """A copy of site-packages (as symbolic links) without the ``hidden`` packages and their
    metadata: for ``python -S``, it is an install in which they were never installed."""
    view = tmp_path / "site"
    view.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(hidden) and entry.suffix != ".pth":
            (view / entry.name).symlink_to(entry)
    return view


def test_a_training_run_and_its_sample_grid_need_neither_torchvision_nor_matplotlib(tmp_path, synthetic_cache):
    """The CPU-only install has neither: genface-train (two DCGAN steps, validation, the final
    sample grid, the export) in an interpreter whose site-packages lack both."""
    from tests.conftest import TINY, TINY_MODEL

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "GENFACE_LOG_DIR": str(tmp_path / "logs"), "WANDB_MODE": "offline",
           "PYTHONPATH": f"{repo}{os.pathsep}{_site_without(tmp_path)}"}
    code = ("import importlib.util, runpy, sys\n"
            "assert importlib.util.find_spec('torchvision') is None and importlib.util.find_spec('matplotlib') is None\n"
            "sys.argv = ['genface-train', *sys.argv[1:]]\n"
            "runpy.run_module('genface.cli.train', run_name='__main__')\n")
    args = ["model=dcgan", "logger=csv", *TINY, *TINY_MODEL["dcgan"], "trainer.max_steps=2",
            f"hydra.run.dir={tmp_path / 'run'}"]
    r = subprocess.run([sys.executable, "-S", "-c", code, *args], capture_output=True, text=True, env=env,
                       timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert list((tmp_path / "run").rglob("samples/step_*.png")), "no sample grid written"
    assert (tmp_path / "run" / "pretrained" / "config.json").is_file()
