"""The genface-generate and genface-metrics command lines that the docs show run as written.

Every ``genface-generate`` / ``genface-metrics`` line of the bash blocks of
docs/cli/generate.md, docs/cli/metrics.md and the README runs, in the order of its page, in a
folder laid out as the lines assume: ``logs/train/runs/<run>/pretrained`` (literally) and
``MODEL`` hold a tiny saved model (a StyleGAN2 for the generate lines, a VAE for the metrics
lines, whose ``recon1k`` needs an autoencoder), ``real_faces/`` and ``path/to/real_faces/``
hold the reference images and, on the metrics page, ``samples/`` holds 2048 images (the
``swd2k`` lines need 2048 on both sides). SWD's own effort is cut (8 patches per image and
32 directions instead of ProGAN's 128 and 4 x 128: the full protocol takes minutes on one
CPU thread and is tested in tests/metrics); the images, counts and command lines are as
documented. A line needing a missing extra (``--video``: PyAV) is skipped.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genface.cli import generate as gen_cli
from genface.cli import metrics as metrics_cli

ROOT = Path(__file__).resolve().parents[2]
RUN = Path("logs/train/runs/<run>/pretrained")


def documented(page: str, command: str) -> list[list[str]]:
    """The argument lists of ``command`` lines in a page's bash blocks (comments dropped)."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", (ROOT / page).read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.split(r"\s#", line)[0].strip()
            if line.startswith(command + " "):
                out.append(shlex.split(line)[1:])
    return out


def _pngs(folder: Path, n: int, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")


def _layout(tmp_path: Path, model, samples: int = 0, reference: int = 40) -> None:
    torch.manual_seed(0)
    model.save_pretrained(tmp_path / RUN)
    model.save_pretrained(tmp_path / "MODEL")
    _pngs(tmp_path / "real_faces", reference, 0)
    _pngs(tmp_path / "path/to/real_faces", reference, 0)
    if samples:
        _pngs(tmp_path / "samples", samples, 1)


def _light_swd(monkeypatch) -> None:
    from genface.metrics import swd

    full = swd.swd_levels
    monkeypatch.setattr(swd, "swd_levels", lambda real, fake, **kw: full(
        real, fake, **{**kw, "nhoods_per_image": 8, "dir_repeats": 1, "dirs_per_repeat": 32}))


def _run(main, args: list[str]) -> None:
    if "--video" in args:
        pytest.importorskip("av")
    assert main(args) == 0, args


def test_the_pages_document_both_commands():
    assert len(documented("docs/cli/generate.md", "genface-generate")) >= 4
    assert len(documented("docs/cli/metrics.md", "genface-metrics")) >= 3
    assert documented("README.md", "genface-generate") and documented("README.md", "genface-metrics")


def test_generate_page_lines_run(tmp_path, monkeypatch):
    from genface.models.stylegan2 import StyleGAN2

    monkeypatch.chdir(tmp_path)
    _layout(tmp_path, StyleGAN2(resolution=32, z_dim=16, w_dim=16, channel_base=256, channel_max=16))
    lines = documented("docs/cli/generate.md", "genface-generate")
    for args in lines:
        _run(gen_cli.main, args)
    assert len(list((tmp_path / "samples").glob("seed*.png"))) == 16  # the first line: --seeds 0-15
    assert (tmp_path / "generated/grid.png").is_file() and (tmp_path / "generated/stylemix.png").is_file()


@pytest.mark.slow
def test_metrics_page_lines_run(tmp_path, monkeypatch, synthetic_cache, capsys):
    from genface.models.vae import VAE

    monkeypatch.chdir(tmp_path)
    _layout(tmp_path, VAE(resolution=32, widths=[8, 16, 32], z_dim=8), samples=2048, reference=2048)
    _light_swd(monkeypatch)
    for args in documented("docs/cli/metrics.md", "genface-metrics"):
        _run(metrics_cli.main, args)
    assert (tmp_path / "scores.json").is_file()
    assert "swd2k" in capsys.readouterr().out  # --list


@pytest.mark.slow
def test_readme_lines_run_in_order(tmp_path, monkeypatch, synthetic_cache):
    """The README's generate line, then its metrics line (the saved model against a folder)."""
    from genface.models.stylegan2 import StyleGAN2

    monkeypatch.chdir(tmp_path)
    _layout(tmp_path, StyleGAN2(resolution=32, z_dim=16, w_dim=16, channel_base=256, channel_max=16), reference=2048)
    _light_swd(monkeypatch)
    for args in documented("README.md", "genface-generate"):
        _run(gen_cli.main, args)
    for args in documented("README.md", "genface-metrics"):
        _run(metrics_cli.main, args)
    assert (tmp_path / "scores.json").is_file()
