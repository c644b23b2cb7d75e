"""``python -m genface``: the version and the command-line tools.

``python -m genface <command> [args]`` runs a command (``python -m genface generate --help``).
"""

from __future__ import annotations

import importlib
import sys

import genface

#: command -> (``module`` with a ``main()``, or ``module:function``; one line of what it does)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("genface.cli.train", "train any model on any data (Hydra overrides)"),
    "compare": ("genface.cli.entry:compare", "train every model on the same data and budget, one report"),
    "generate": ("genface.cli.generate", "images, style-mixing grids and latent-walk videos from a saved model"),
    "metrics": ("genface.cli.metrics", "score a folder or a saved model against a folder (JSON)"),
    "extract": ("genface.cli.extract", "detect, align and crop faces from images and videos [faces]"),
    "swap": ("genface.cli.swap", "swap faces in images and videos with a trained FaceSwap [faces]"),
    "provenance": ("genface.cli.provenance", "verify a file's provenance marks (C2PA, watermark, metadata)"),
}


def usage() -> str:
    lines = [f"genface {genface.__version__}: generative face models and face swapping for research.",
             "", "Commands (each also installed as genface-<command>):", ""]
    lines += [f"  genface-{name:10s} {what}" for name, (_, what) in COMMANDS.items()]
    lines += ["", "Run one: python -m genface <command> [args]   (e.g. python -m genface generate --help)",
              "Everything genface generates is synthetic and marked as such (docs/responsible-use.md)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(genface.__version__)
        return 0
    if argv[0] not in COMMANDS:
        print(f"genface: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, _, function = COMMANDS[argv[0]][0].partition(":")
    entry = getattr(importlib.import_module(module_name), function or "main")
    sys.argv = [f"genface-{argv[0]}", *argv[1:]]
    result = entry()
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
