"""Light entry points for the commands whose modules import torch or Hydra at import time.

``genface-compare --help`` is answered from the packaged YAML (:mod:`genface.cli.help`)
before :mod:`genface.cli.compare`, which imports torch, Hydra and Lightning at the top, is
imported; tab completion (``-sc query=bash``) runs Hydra on ``compare.yaml`` with a plain
stand-in for the typed schema (``compare.yaml`` lists every key of ``CompareSchema``, which
tests/test_cli_fast_help.py checks), so it imports neither torch nor Lightning; any other
command line runs ``genface.cli.compare.main`` unchanged.
"""

from __future__ import annotations

import sys

from genface.cli.help import maybe_print_help

_COMPLETION_FLAGS = ("-sc", "--shell-completion")


def compare() -> None:
    """``genface-compare``: the help page and tab completion without torch, else
    :func:`genface.cli.compare.main`."""
    if maybe_print_help("compare"):
        return
    if any(a.split("=", 1)[0] in _COMPLETION_FLAGS for a in sys.argv[1:]):
        from genface.cli.complete import maybe_complete

        if not maybe_complete("compare"):  # answered from the store, else by Hydra
            _complete("compare")
        return
    from genface.cli.compare import main

    main()


def _complete(config_name: str) -> None:
    """Hydra's shell completion of ``config_name`` with the schema replaced by an untyped node."""
    import hydra
    from hydra.core.config_store import ConfigStore

    from genface.config import register_configs

    register_configs()
    ConfigStore.instance().store(name=f"genface_{config_name}_schema", node={})
    hydra.main(version_base="1.3", config_path="pkg://genface.configs", config_name=config_name)(_noop)()


def _noop(cfg) -> None:
    """The task of a completion-only Hydra app (never run: completion exits before it)."""
