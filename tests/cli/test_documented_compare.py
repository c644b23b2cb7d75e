"""Every genface-compare command line of the docs and the README composes against the typed
compare schema (``--config-name`` honoured; ``make demo ARGS="..."`` counts as one), as
tests/test_docs.py does for genface-train. Nothing is trained."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def compare_lines() -> list[tuple[str, str, list[str]]]:
    """``(page, config name, overrides)`` of every documented genface-compare line."""
    out = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = re.split(r"\s#", line)[0].strip()
                if not re.match(r"(\S*/)?genface-compare\b|make demo\b", line):
                    continue
                args = shlex.split(line)
                if args[:2] == ["make", "demo"]:
                    args = ["genface-compare", *shlex.split(next((a[5:] for a in args if a.startswith("ARGS=")), ""))]
                if Path(args[0]).name != "genface-compare" or "--help" in args:
                    continue
                name, rest = "compare", args[1:]
                if "--config-name" in rest:
                    i = rest.index("--config-name")
                    name, rest = rest[i + 1], rest[:i] + rest[i + 2:]
                out.append((str(page.relative_to(ROOT)), name, rest))
    return out


LINES = compare_lines()


def test_the_pages_hold_compare_lines():
    pages = {p for p, _, _ in LINES}
    assert {"README.md", "docs/compare.md", "docs/tutorial-compare-swappers.md"} <= pages
    assert len(LINES) >= 12


@pytest.mark.parametrize("page,name,overrides", LINES, ids=[f"{p}:{n}:{' '.join(o)[:40]}" for p, n, o in LINES])
def test_documented_compare_line_composes(page, name, overrides, tmp_path):
    from genface.cli import compare

    compare._register()
    overrides = [o.replace("/path/to/faces", str(tmp_path)) for o in overrides]
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="genface.configs", version_base="1.3"):
        cfg = compose(name, overrides=overrides)
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        assert key in cfg, f"{page}: {o}"
