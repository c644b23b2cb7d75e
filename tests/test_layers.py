"""The package's layers: no module-level import runs back up.

Layers, bottom up: ``utils``/``errors`` < ``nn`` < ``models``; ``faces`` < ``data``; ``training``
and ``cli`` on top. Lazy imports inside functions count too; only the module ``__getattr__``
re-exports left at a moved name's old home (``genface.faces.pairs``, ``genface.nn.latent``) are
exempt: they run when an old import path is used, never when the package is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import genface

PACKAGE = Path(genface.__file__).parent
#: unit -> the units its modules must not import at module level
FORBIDDEN = {
    "utils": {"nn", "models", "training", "data", "faces", "metrics", "cli"},
    "nn": {"models", "training", "data", "faces", "metrics", "cli"},
    "models": {"training", "data", "faces", "metrics", "cli"},
    "faces": {"data", "training", "cli"},
    "data": {"training", "cli"},
    "metrics": {"training", "cli"},
    "training": {"cli"},
}


def _unit(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def genface_imports(path: Path) -> list[str]:
    """``genface.*`` modules ``path`` imports anywhere, but in a module-level ``__getattr__``."""
    tree = ast.parse(path.read_text())
    shims = {id(n) for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"}
    out: list[str] = []

    def visit(node):
        if id(node) in shims:
            return
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return [m for m in out if m.startswith("genface.")]


def test_no_import_runs_back_up():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit(path)
        for mod in genface_imports(path):
            target = mod.split(".")[1]
            if target in FORBIDDEN.get(unit, ()):
                wrong.append(f"{path.relative_to(PACKAGE.parent)} imports {mod}")
    assert not wrong, "imports that run back up the layers:\n" + "\n".join(wrong)


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "mod.py"
    bad.write_text("import os\nfrom genface.models.base import GANPair\n\ndef f():\n    import genface.cli.train\n\n"
                   "def __getattr__(name):\n    from genface.data import pairs\n")
    assert genface_imports(bad) == ["genface.models.base", "genface.cli.train"]


def test_moved_names_still_import_from_their_old_homes():
    """What moved (closing note of issue 14) stays importable where it was."""
    import genface.data
    import genface.faces
    import genface.faces.pairs
    import genface.models.api
    import genface.models.base
    import genface.nn.latent
    import genface.utils
    from genface.data import pairs

    assert genface.faces.SwapPairDataset is genface.data.SwapPairDataset is pairs.SwapPairDataset
    assert genface.faces.pairs.synthetic_swap_eval_set is pairs.synthetic_swap_eval_set
    assert genface.nn.latent.GeneratorAPI is genface.models.api.GeneratorAPI
    assert genface.nn.latent.GANWrapperAPI is genface.models.api.GANWrapperAPI
    assert genface.models.base.build_config is genface.utils.build_config
