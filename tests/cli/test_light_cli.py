"""The light core and fast CLIs (issue 13): extras named in errors, --help without torch,
the config tree, lr_g / lr_d names."""

import subprocess
import sys

import pytest

from genface.cli.help import config_groups, render_help
from genface.utils import MissingExtraError, require


def test_require_names_the_extra():
    with pytest.raises(MissingExtraError, match=r"pip install 'genface\[faces\]'") as e:
        require("genface_no_such_module_xyz", "faces", feature="face detection")
    assert "\n" not in str(e.value) and "face detection" in str(e.value)
    assert isinstance(e.value, ImportError)  # callers catching ImportError still work
    assert require("json").dumps([1]) == "[1]"


def test_help_is_rendered_without_torch_lightning_or_hydra():
    code = ("import sys; sys.argv = ['genface-train', '--help']\n"
            "from genface.cli.train import main\n"
            "main()\n"
            "heavy = [m for m in ('torch', 'lightning', 'hydra') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    models = next(line for line in r.stdout.splitlines() if line.startswith("model: "))
    assert "genface-train" in r.stdout and "dcgan" in models.split(": ", 1)[1].split(", ")
    assert "== Config ==" not in r.stdout  # no 129-line config dump
    assert len(r.stdout.splitlines()) < 45


def test_help_lists_the_packaged_groups():
    groups = config_groups()
    assert {"model", "data", "trainer", "experiment/compare"} <= set(groups)
    assert not any(g.startswith("hydra") for g in groups)
    assert "stylegan2" in groups["model"]
    text = render_help("train")
    for g in ("callbacks:", "logger:", "hparams_search:"):
        assert g in text
    assert config_groups(groups=["model"]) == {"model": groups["model"]}


def test_config_tree_resolves_and_orders(make_cfg):
    from rich.console import Console

    from genface.cli.config_tree import config_tree

    cfg = make_cfg("dcgan")
    console = Console(width=120, record=True, color_system=None)
    console.print(config_tree(cfg))
    text = console.export_text()
    assert text.index("data") < text.index("model") < text.index("trainer")
    assert "${" not in text  # interpolations filled in
    assert "genface.models.dcgan.DCGAN" in text


@pytest.mark.parametrize("model,names", [("dcgan", ["lr_d", "lr_g"]), ("vae", ["lr"])])
def test_learning_rates_are_named_per_network(make_cfg, model, names):
    from genface.cli.train import train

    out = train(make_cfg(model))["output_dir"]
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert sorted(h for h in header if h.startswith("lr")) == names
    card = (out / "pretrained" / "README.md").read_text()  # the model card of the run
    assert "images seen: 64" in card and "steps: 4" in card  # 4 batches of 16
    assert "genface.data.synthetic.SyntheticFaces" in card and f"| {names[0]} |" in card
