"""Light entry points for the commands whose modules import torch or Hydra at import time.

``genface-compare --help`` is answered from the packaged YAML (:mod:`genface.cli.help`)
before :mod:`genface.cli.compare`, which imports torch, Hydra and Lightning at the top, is
imported; any other command line runs ``genface.cli.compare.main`` unchanged.
"""

from __future__ import annotations

from genface.cli.help import maybe_print_help


def compare() -> None:
    """``genface-compare``: the help page without torch, else :func:`genface.cli.compare.main`."""
    if maybe_print_help("compare"):
        return
    from genface.cli.compare import main

    main()
