"""Every command's ``--help`` and genface-train's tab completion without torch, Lightning or
Hydra (issue 13): each runs in a fresh interpreter, which reports the heavy modules it
imported; the page must list what that command accepts (and only that)."""

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("torch", "lightning", "hydra", "cv2", "dlib", "scipy", "matplotlib", "wandb")

# A fresh interpreter: set argv, run the entry point, report the heavy modules it imported.
_PROBE = f"""
import importlib, json, sys
entry, *argv = sys.argv[1:]
module, _, function = entry.partition(":")
sys.argv = [argv[0], *argv[1:]]
try:
    getattr(importlib.import_module(module), function or "main")()
except SystemExit as e:
    if e.code not in (0, None):
        raise
print("HEAVY=" + json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
"""


def run_entry(entry: str, *argv: str, env: dict | None = None) -> tuple[str, list[str]]:
    r = subprocess.run([sys.executable, "-c", _PROBE, entry, *argv], capture_output=True, text=True,
                       timeout=300, env={**os.environ, **(env or {})})
    assert r.returncode == 0, r.stderr[-2000:]
    text, _, heavy = r.stdout.rpartition("HEAVY=")
    return text, json.loads(heavy)


#: entry point (as in pyproject.toml's [project.scripts]) -> lines the help page must hold
COMMANDS = {
    "genface.cli.train:main": ["genface-train", "model: ", "data: ", "trainer: ", "logger: ", "callbacks: "],
    "genface.cli.entry:compare": ["genface-compare", "data_config: synthetic_faces", "budget_images:",
                                  "trainer_config:  cpu, ddp", "models:          "],
    "genface.cli.generate:main": ["genface-generate", "--seeds", "--psi", "--noise-mode", "--grid"],
    "genface.cli.metrics:main": ["genface-metrics", "--metrics", "--json", "--list"],
    "genface.cli.extract:main": ["genface-extract", "--detector", "{auto,hog,cnn,hog+cnn,haar}", "--select"],
    "genface.cli.swap:main": ["genface-swap", "--model", "{hull,learned,ellipse}", "{none,avg,reinhard}"],
    "genface.cli.provenance:main": ["genface-provenance", "verify"],
}


def test_every_script_is_covered():
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    scripts = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts.values()) == set(COMMANDS)
    from genface.__main__ import COMMANDS as PYTHON_M  # python -m genface <command> runs each one

    assert {f"genface.cli.{name}:main" if ":" not in mod else mod for name, (mod, _) in PYTHON_M.items()} == set(COMMANDS)


@pytest.mark.parametrize("entry", list(COMMANDS))
def test_help_imports_nothing_heavy_and_lists_what_the_command_accepts(entry):
    name = COMMANDS[entry][0]
    text, heavy = run_entry(entry, name, "--help")
    assert heavy == [], f"{name} --help imported {heavy}"
    for line in COMMANDS[entry]:
        assert line in text, f"{line!r} missing from {name} --help:\n{text}"


def test_compare_help_lists_only_what_compare_accepts():
    text, heavy = run_entry("genface.cli.entry:compare", "genface-compare", "--help")
    assert heavy == []
    # compare has no config groups of its own: none of train's group listing (the old bug
    # listed callbacks=... which compare then rejected), its own keys instead
    assert "callbacks:" not in text and "hparams_search:" not in text and "== Config groups" not in text
    assert "eval_every_images: 3200" in text and "${" not in text.split("== Options")[1].split("paths:")[0]
    study, _ = run_entry("genface.cli.entry:compare", "genface-compare", "--config-name", "compare_study", "--help")
    assert "task_name: compare_study" in study and "- stylegan_a" in study and "task_name: compare\n" not in study


def test_python_m_genface_compare_help_is_fast():
    text, heavy = run_entry("genface.__main__:main", "genface", "compare", "--help")
    assert heavy == [] and "genface-compare" in text and "data_config:" in text


def test_train_tab_completion_imports_nothing_heavy():
    text, heavy = run_entry("genface.cli.train:main", "genface-train", "-sc", "query=bash",
                            env={"COMP_LINE": "genface-train model="})
    assert {"model=dcgan", "model=stylegan2", "model=vae"} <= set(text.split())
    assert not {"torch", "lightning"} & set(heavy), heavy
    text, heavy = run_entry("genface.cli.train:main", "genface-train", "-sc", "query=bash",
                            env={"COMP_LINE": "genface-train trainer.max_st"})
    assert text.split() == ["trainer.max_steps="]
    assert not {"torch", "lightning"} & set(heavy), heavy


def test_compare_tab_completion_imports_nothing_heavy():
    text, heavy = run_entry("genface.cli.entry:compare", "genface-compare", "-sc", "query=bash",
                            env={"COMP_LINE": "genface-compare budget_"})
    assert text.split() == ["budget_images=", "budget_seconds="]
    assert not {"torch", "lightning"} & set(heavy), heavy


def test_compare_yaml_lists_every_schema_key():
    """Completion composes compare.yaml without the typed CompareSchema: every key must be in the YAML."""
    import dataclasses

    from genface.cli.compare import CompareSchema
    from genface.cli.help import light_config

    assert {f.name for f in dataclasses.fields(CompareSchema)} <= set(light_config("compare"))


@pytest.mark.slow
def test_compare_fast_help_is_hydras_own_page():
    """The page rendered from the YAML equals the one Hydra composes (which imports torch)."""
    from genface.cli.help import render_help

    code = "import sys; sys.argv = ['genface-compare', '--help']\nfrom genface.cli.compare import main\nmain()"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]

    def lines(t):
        return [ln for ln in t.splitlines() if ln.strip()]

    assert lines(render_help("compare")) == lines(r.stdout)


def test_a_missing_sweeper_or_launcher_names_its_extra(monkeypatch):
    import importlib.util

    from genface.cli._guard import missing_plugin

    assert missing_plugin(["model=vae", "trainer.max_steps=5"]) is None
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("hydra_plugins.") else real(name, *a))
    msg = missing_plugin(["-m", "model=vae", "hparams_search=vae_optuna"])
    assert msg == ("hparams_search=vae_optuna needs the Hydra plugin hydra_optuna_sweeper, which is not "
                   "installed: pip install 'genface[sweeps]'")
    assert "genface[cluster]" in missing_plugin(["hydra/launcher=submitit_slurm"])
    assert "genface[sweeps]" in missing_plugin(["hydra/launcher=joblib"])
    assert missing_plugin(["hydra/launcher=basic"]) is None
