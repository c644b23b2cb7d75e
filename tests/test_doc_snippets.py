"""Every ```python block of the docs and the README runs (issue 13).

The blocks of one page run in order in one namespace, in a temporary folder. A page sets up
what its prose takes for granted in an HTML comment just before a block (invisible on the
site)::

    <!-- snippet: setup
    import torch
    z = torch.randn(2, 128)
    -->

and a block that cannot run here says why: ``<!-- snippet: skip needs the real face folders -->``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(?:<!--\s*snippet:\s*(?P<kind>setup|skip)(?P<body>.*?)-->\s*\n)?```python\n(?P<code>.*?)```", re.S)
PAGES = sorted(str(p.relative_to(ROOT)) for p in [*(ROOT / "docs").rglob("*.md"), ROOT / "README.md"]
               if "```python" in p.read_text())
SLOW = {"docs/data-synthetic.md"}  # renders 10,000 faces


def snippets(page: str) -> list[tuple[str, str, str]]:
    """``[(kind, directive body, code)]`` of a page's python blocks (kind: "", "setup" or "skip")."""
    text = (ROOT / page).read_text()
    return [(m["kind"] or "", (m["body"] or "").strip(), m["code"]) for m in BLOCK.finditer(text)]


def test_every_page_with_python_is_collected():
    assert "docs/notebook-api.md" in PAGES and "README.md" in PAGES and "docs/cli/generate.md" in PAGES
    skipped = [(p, body) for p in PAGES for kind, body, _ in snippets(p) if kind == "skip"]
    assert all(body for _, body in skipped), f"a skip needs a reason: {skipped}"


@pytest.mark.parametrize("page", [pytest.param(p, marks=pytest.mark.slow) if p in SLOW else p for p in PAGES])
def test_documented_snippets_run(page, tmp_path, monkeypatch, synthetic_cache):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    namespace: dict = {"__name__": f"snippets_of_{Path(page).stem}"}
    ran = 0
    for i, (kind, body, code) in enumerate(snippets(page)):
        if kind == "skip":
            continue
        if kind == "setup":
            exec(compile(body, f"{page}:setup-{i}", "exec"), namespace)
        exec(compile(code, f"{page}:block-{i}", "exec"), namespace)
        ran += 1
    if not ran:
        pytest.skip(f"every block of {page} is marked skip")
