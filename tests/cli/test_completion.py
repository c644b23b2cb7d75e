"""Tab completion from the store (genface/cli/complete.py) gives Hydra's own answers.

Each line is answered twice by the store (the first call composes and stores, the second
reads the store) and once by Hydra's ``CompletionPlugin._query`` on the same config loader;
all three must be equal. Lines only Hydra handles must go to Hydra.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hydra.plugins.completion_plugin import CompletionPlugin

from genface.cli import complete

TRAIN_LINES = [
    "", "mo", "model=", "model=st", "model=dcgan ", "model=dcgan da", "model=dcgan data.", "model=dcgan data.res",
    "model=dcgan data.resolution=", "model=dcgan tr", "model=dcgan +tr", "~cal", "~callbacks.", "hydra/",
    "hydra/launcher=", "hydra.job.", "model=vae model.net.", "model=vae model.net.z", "-m model=dcgan,vae se",
    "seed=", "experiment=", "callbacks.sample_grid.n=", "model=nope da",
]
COMPARE_LINES = ["", "mo", "models=", "resolution=", "hydra.run."]


class _Hydra(CompletionPlugin):
    """Hydra's completion plugin with the shell-specific methods stubbed (only _query is used)."""

    def install(self) -> None: ...

    def uninstall(self) -> None: ...

    @staticmethod
    def provides() -> str:
        return "test"

    def query(self, config_name) -> None: ...

    @staticmethod
    def help(command: str) -> str:
        return ""


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GENFACE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "completion"


@pytest.mark.parametrize("config_name,lines", [("train", TRAIN_LINES), ("compare", COMPARE_LINES)])
def test_answers_equal_hydras(config_name, lines, store_dir):
    hydra = _Hydra(config_loader=complete._loader(config_name))
    for line in lines:
        first = complete.query(config_name, f"genface-{config_name} {line}")
        second = complete.query(config_name, f"genface-{config_name} {line}")
        assert first is not None, line
        assert first == second == hydra._query(config_name=config_name, line=line), line
    assert list(store_dir.glob("*/*.json"))


def test_lines_only_hydra_handles_go_to_hydra(store_dir, monkeypatch):
    for line in ("--cfg job mo", "-cn other mo", "hydra.searchpath=[x] mo", "data.path=./da", "model=dcgan paths.output_dir="):
        assert complete.query("train", f"genface-train {line}") is None, line
    monkeypatch.setenv("COMP_LINE", "genface-train --cfg job mo")
    assert complete.maybe_complete("train", ["-sc", "query=bash"]) is False
    before = set(store_dir.glob("*/*.json"))
    assert complete.maybe_complete("train", ["-sc", "install=bash"]) is False  # Hydra prints the script
    assert len(set(store_dir.glob("*/*.json")) - before) == 1  # ... and the empty line's store is ready


def test_a_changed_install_gets_a_new_store_and_the_old_one_goes(store_dir, monkeypatch):
    assert complete.query("train", "genface-train mo") == ["model.", "model="]
    (old,) = list(store_dir.iterdir())
    monkeypatch.setattr(complete, "_fingerprint", lambda: "f" * 16)
    assert complete.query("train", "genface-train mo") == ["model.", "model="]
    assert [p.name for p in store_dir.iterdir()] == ["f" * 16] and not old.exists()


def test_the_command_answers_a_bash_query(tmp_path):
    env = {**os.environ, "GENFACE_CACHE": str(tmp_path / "cache"), "COMP_LINE": "genface-train model=dcgan tr"}
    for _ in range(2):  # composed and stored, then from the store
        r = subprocess.run([sys.executable, "-m", "genface.cli.train", "-sc", "query=bash"], capture_output=True,
                           text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        assert r.stdout.split() == ["trainer.", "trainer="]
    env["COMP_LINE"] = "genface-compare mod"
    r = subprocess.run([sys.executable, "-c", "from genface.cli.entry import compare; compare()", "-sc", "query=bash"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and r.stdout.split() == ["model=", "models."], r.stderr[-2000:]


def test_an_unwritable_cache_still_answers(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("GENFACE_CACHE", str(blocker / "cache"))  # below a file: cannot be made
    assert complete.query("train", "genface-train mo") == ["model.", "model="]
