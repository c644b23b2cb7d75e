"""The mkdocs site: every page is in the nav, the nav names real pages, the site builds
without warnings (apart from pages that other work has yet to write), and the commands
the pages document parse."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _nav_pages(nav) -> list[str]:
    pages: list[str] = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            pages += _nav_pages(value)
        elif isinstance(value, str) and not value.startswith(("http://", "https://")):
            pages.append(value)
    return pages


def _config() -> dict:
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


def test_nav_lists_every_page_and_core_pages_exist():
    nav = _nav_pages(_config()["nav"])
    assert len(nav) == len(set(nav)), f"pages listed twice: {sorted(p for p in nav if nav.count(p) > 1)}"
    on_disk = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    missing_from_nav = [p for p in on_disk if p not in nav]
    assert not missing_from_nav, f"add these pages to mkdocs.yml's nav: {missing_from_nav}"
    for page in ["index.md", "installation.md", "configs.md", "training.md", "notebook-api.md",
                 "responsible-use.md"]:
        assert page in nav and (DOCS / page).is_file(), page
    assert (DOCS / "quickstart.ipynb").is_file()


def _planned_pages() -> list[str]:
    """Pages in the nav that are not written yet (other work adds them)."""
    return [p for p in _nav_pages(_config()["nav"]) if not (DOCS / p).is_file()]


def test_internal_links_point_to_pages_or_planned_pages():
    nav = set(_nav_pages(_config()["nav"]))
    bad = []
    for page in DOCS.rglob("*.md"):
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            resolved = (page.parent / target).resolve()
            rel = str(resolved.relative_to(DOCS.resolve())) if resolved.is_relative_to(DOCS.resolve()) else None
            if not resolved.exists() and rel not in nav:
                bad.append(f"{page.relative_to(DOCS)} -> {target}")
    assert not bad, f"broken links: {bad}"


@pytest.mark.skipif(shutil.which("mkdocs") is None and not (Path(sys.executable).parent / "mkdocs").exists(),
                    reason="mkdocs is not installed (pip install -e '.[docs]')")
def test_mkdocs_build_has_no_warnings_but_planned_pages(tmp_path):
    mkdocs = Path(sys.executable).parent / "mkdocs"
    cmd = [str(mkdocs) if mkdocs.exists() else "mkdocs", "build", "-d", str(tmp_path / "site")]
    planned = _planned_pages()
    if not planned:
        cmd.append("--strict")  # every page written: the build must be clean
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("WARNING")]
    unexpected = [w for w in warnings if not any(f"'{p}'" in w for p in planned)]
    assert not unexpected, "\n".join(unexpected)
    site = tmp_path / "site"
    for page in ["index.html", "installation/index.html", "configs/index.html", "training/index.html",
                 "notebook-api/index.html", "responsible-use/index.html"]:
        assert (site / page).is_file(), page
    assert (site / "quickstart.ipynb").is_file()  # the notebook is shipped with the site
    assert "make demo" in (site / "index.html").read_text()


def _commands(page: str) -> list[str]:
    """``genface-train ...`` lines of a page's bash blocks (continuations joined)."""
    text = (DOCS / page).read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.split(r"\s#", line)[0].strip()
            if line.startswith("genface-train") and "<" not in line:
                out.append(line)
    return out


#: every page (and the README) whose bash blocks hold a genface-train line
TRAIN_PAGES = sorted(str(p.relative_to(DOCS)) if p.is_relative_to(DOCS) else "../README.md"
                     for p in [*DOCS.rglob("*.md"), ROOT / "README.md"] if re.search(r"^genface-train ", p.read_text(), re.M))


def test_train_commands_are_found_on_every_page_that_has_them():
    assert {"configs.md", "training.md", "installation.md", "../README.md", "long-runs.md"} <= set(TRAIN_PAGES)


@pytest.mark.parametrize("page", TRAIN_PAGES)
def test_documented_train_commands_compose(page, tmp_path, monkeypatch):
    """Every documented ``genface-train`` override composes and validates (nothing is trained)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from genface.config import register_configs, validate_config

    monkeypatch.setenv("GENFACE_LOG_DIR", str(tmp_path))
    commands = _commands(page)
    assert commands, f"no genface-train commands found in {page}"
    register_configs()
    for command in commands:
        args = [a.strip("'\"") for a in command.split()[1:]]
        args = [a for a in args if a not in ("-m", "--cfg", "job", "--help")]
        if any(a.startswith("ckpt_path=") for a in args):
            args = [a for a in args if not a.startswith(("ckpt_path=", "hydra."))]
        overrides = [a.replace("/path/to/faces", str(tmp_path)) for a in args]
        sweep = [a for a in overrides if "," in a.split("=", 1)[-1] and "[" not in a]
        # a sweep composes once per value: take the first of each list
        overrides = [a.split("=", 1)[0] + "=" + a.split("=", 1)[1].split(",")[0] if a in sweep else a
                     for a in overrides]
        GlobalHydra.instance().clear()
        with initialize_config_module(config_module="genface.configs", version_base="1.3"):
            cfg = compose(config_name="train", overrides=overrides)
        if not any(a.startswith("hparams_search=") for a in overrides):
            validate_config(cfg)
