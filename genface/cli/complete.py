"""Tab completion without composing the config at every key press.

Hydra answers a completion query (``genface-train -sc query=bash``, sent by the bash function
that ``-sc install=bash`` installs) by importing itself, composing the whole config for the
words already typed and matching the last word against it: 0.4-0.8 s of CPU per query, over
2 s of wall time on a loaded machine. This module gives the same answers from a cache:

- on a miss it composes with Hydra once (:func:`_build`) and stores, for the words already
  typed, every answer Hydra's :class:`~hydra.plugins.completion_plugin.CompletionPlugin`
  can give about the composed config (``_get_matches`` of each node, computed by Hydra's own
  code), and the tree of config groups;
- every query, hit or miss, is then answered from that store by :func:`_answer`, which follows
  ``CompletionPlugin._query`` step by step; tests/cli/test_completion.py checks that the answers
  equal Hydra's for a set of command lines.

The cache lives under ``$GENFACE_CACHE/completion`` and is keyed by a fingerprint of the
installed genface package (its files, the configs included), Hydra, its plugins and the
W&B environment variables that a resolver reads; it never goes stale on an upgrade. Lines
that the store cannot answer the way Hydra would (any ``-`` option but ``-m``/``--multirun``,
file-name completion, a ``hydra.searchpath`` override) go to Hydra unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

#: genface's commands: Hydra config name -> how the Hydra app of that command is set up
#: (``compare``: the typed schema replaced by an untyped node, as genface.cli.entry does).
CONFIG_NAMES = ("train", "compare")

_MULTIRUN = ("-m", "--multirun")
_KEEP = 200  # stored command prefixes per fingerprint


def _strip_app_name(line: str) -> str:
    """The arguments of a completion line (Hydra's ``strip_python_or_app_name``)."""
    match = re.match(r"^\s*[\w\/]*python[3]?\s*[\w/\.]*\s*(.*)", line) or re.match(r"^\s*[\w_\-=\./]+\s*(.*)", line)
    if match is None:
        raise RuntimeError(f"Error parsing line '{line}'")
    return match.group(1)


def _split(line: str) -> tuple[list[str], str, bool] | None:
    """(words already typed, the word being completed, multirun), or None when the line has an
    option that only Hydra's own parser handles, or the word is a file name."""
    args = line.split()
    multirun = any(a in _MULTIRUN for a in args)
    words = [a for a in args if a not in _MULTIRUN]
    if any(a.startswith("-") for a in words) or any("hydra.searchpath" in a for a in words):
        return None
    if line == "" or line[-1] == " " or not words:
        word = ""
    else:
        word, words = words[-1], words[:-1]
    eq = word.rfind("=")
    if eq != -1 and word[eq + 1:].lower().startswith((".", "/", "\\")):
        return None  # a path: Hydra lists files
    return words, word, multirun


def _fingerprint() -> str:
    """Changes whenever anything that shapes the answers may have changed."""
    import importlib.util

    h = hashlib.sha1(sys.version.encode())
    roots = [Path(__file__).resolve().parents[1]]
    for name in ("hydra", "hydra_plugins"):
        spec = importlib.util.find_spec(name)
        if spec is not None:
            roots += [Path(p) for p in (spec.submodule_search_locations or [])]
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for f in sorted(filenames):
                if f.endswith((".py", ".yaml", ".yml")):
                    st = os.stat(os.path.join(dirpath, f))
                    h.update(f"{dirpath}/{f}:{st.st_size}:{st.st_mtime_ns}".encode())
    for var in ("WANDB_MODE", "WANDB_API_KEY"):
        h.update(f"{var}={bool(os.environ.get(var))}:{os.environ.get(var) if var == 'WANDB_MODE' else ''}".encode())
    return h.hexdigest()[:16]


def _store_path(config_name: str, words: list[str], multirun: bool) -> Path:
    from genface.utils import cache_dir

    key = hashlib.sha1(json.dumps([config_name, words, multirun]).encode()).hexdigest()[:20]
    return cache_dir("completion", _fingerprint()) / f"{key}.json"


def _loader(config_name: str) -> Any:
    """Hydra's config loader for ``config_name``, set up as the command sets up its app."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_store import ConfigStore

    from genface.config import register_configs

    register_configs()
    if config_name == "compare":
        ConfigStore.instance().store(name=f"genface_{config_name}_schema", node={})
    return ConfigLoaderImpl(config_search_path=create_config_search_path("pkg://genface.configs"))


def _build(config_name: str, words: list[str], multirun: bool) -> dict[str, Any]:
    """Compose with Hydra once and record what ``CompletionPlugin`` would match against it."""
    from hydra.core.object_type import ObjectType
    from hydra.errors import ConfigCompositionException
    from hydra.plugins.completion_plugin import CompletionPlugin
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    loader = _loader(config_name)
    _, repo = loader._parse_overrides_and_create_caching_repo(config_name, words)
    groups: dict[str, dict[str, list[str]]] = {}
    todo = [""]
    while todo:
        g = todo.pop()
        sub = repo.get_group_options(g, ObjectType.GROUP)
        groups[g] = {"configs": repo.get_group_options(g, ObjectType.CONFIG), "groups": sub}
        todo += [f"{g}/{s}" if g else s for s in sub]
    store: dict[str, Any] = {"groups": groups, "children": None, "exact": {}}
    try:
        cfg = loader.load_configuration(config_name=config_name, overrides=words,
                                        run_mode=RunMode.MULTIRUN if multirun else RunMode.RUN)
    except ConfigCompositionException:
        return store  # Hydra gives no config matches then
    children: dict[str, list[str]] = {}
    exact: dict[str, Any] = {}

    def record(table: dict[str, Any], key: str, node: Any, word: str) -> bool:
        try:
            table[key] = CompletionPlugin._get_matches(node, word)
            return True
        except Exception as e:  # Hydra raises the same when asked: the query goes to it
            table[key] = {"raise": type(e).__name__}
            return False

    def visit(node: Any, path: str) -> None:
        if path:
            record(exact, f"{path}.", cfg, f"{path}.")
            record(exact, f"{path}=", cfg, f"{path}=")
        if not record(children, path, node, "") or node._is_none() or node._is_missing() or node._is_interpolation():
            return
        items = node.items_ex(resolve=False) if OmegaConf.is_dict(node) else enumerate(node._iter_ex(resolve=False))
        for k, v in items:
            child = f"{path}.{k}" if path else str(k)
            if OmegaConf.is_config(v):
                visit(v, child)
            else:
                record(exact, f"{child}.", cfg, f"{child}.")
                record(exact, f"{child}=", cfg, f"{child}=")

    visit(cfg, "")
    store["children"], store["exact"] = children, exact
    return store


def _groups(store: dict[str, Any], word: str) -> tuple[list[str], bool]:
    """``CompletionPlugin._query_config_groups`` on the stored group tree."""
    prefix = ""
    if word.startswith(("+", "~")):
        prefix, word = word[0], word[1:]
    is_deletion = prefix == "~"
    tree = store["groups"]

    def options(group: str, kind: str) -> list[str]:
        return tree.get(group, {}).get(kind, [])

    eq, slash = word.rfind("="), word.rfind("/")
    matched: list[str] = []
    exact_match = False
    if eq != -1:
        parent = word[:eq]
        for m in options(parent, "configs"):
            name = f"{parent}={m}" if parent else m
            if name.startswith(word):
                matched.append(name)
            exact_match = True
    else:
        parent = "" if slash == -1 else word[:slash]
        for m in options(parent, "groups"):
            name = f"{parent}/{m}" if parent else m
            if name.startswith(word):
                files, dirs = options(name, "configs"), options(name, "groups")
                if not dirs and files and not is_deletion:
                    name += "="
                elif dirs and not files:
                    name += "/"
                matched.append(name)
    return [prefix + m for m in matched], exact_match


def _config_matches(store: dict[str, Any], word: str) -> list[str] | None:
    """``CompletionPlugin._get_matches(config, word)`` from the store; None: ask Hydra."""
    if store["children"] is None or word.startswith(("+", "~")):
        return []  # composition failed / no key starts with + or ~: Hydra matches nothing either
    if word.endswith((".", "=")):
        if word not in store["exact"]:
            return None
        found = store["exact"][word]
        return None if isinstance(found, dict) else found
    dot = word.rfind(".")
    base, partial = (word[:dot], word[dot + 1:]) if dot != -1 else ("", word)
    if not isinstance(store["children"].get(base), list):
        return None
    return [f"{base}.{m}" if base else m for m in store["children"][base] if m.startswith(partial)]


def _answer(store: dict[str, Any], word: str) -> list[str] | None:
    """``CompletionPlugin._query``'s result list, or None when only Hydra can answer."""
    matched, exact_match = _groups(store, word)
    config = [] if exact_match else _config_matches(store, word)
    if config is None:
        return None
    return sorted(set(matched + config))


def query(config_name: str, line: str | None = None) -> list[str] | None:
    """The completions of ``line`` (default: ``$COMP_LINE``) for the command whose Hydra config
    is ``config_name``; None when the line must go to Hydra."""
    line = os.environ.get("COMP_LINE", "") if line is None else line
    split = _split(_strip_app_name(line))
    if split is None:
        return None
    words, word, multirun = split
    from genface.utils import atomic_write_text

    try:
        path: Path | None = _store_path(config_name, words, multirun)
    except OSError:  # an unwritable cache: answered all the same, not stored
        path = None
    store = None
    if path is not None and path.is_file():
        try:
            store = json.loads(path.read_text())
        except (OSError, ValueError):
            store = None
    if store is None:
        store = _build(config_name, words, multirun)
        if path is not None:
            try:
                atomic_write_text(path, json.dumps(store))
                _prune(path.parent)
            except OSError:
                pass
    return _answer(store, word)


def _prune(folder: Path) -> None:
    """Keep the newest :data:`_KEEP` prefixes of this fingerprint and no older fingerprint."""
    for other in folder.parent.iterdir():
        if other != folder and other.is_dir():
            for f in other.glob("*.json"):
                f.unlink(missing_ok=True)
            try:
                other.rmdir()
            except OSError:
                pass
    files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for f in files[_KEEP:]:
        f.unlink(missing_ok=True)


def maybe_complete(config_name: str, argv: list[str] | None = None) -> bool:
    """Answer ``-sc query=bash`` (the bash function's query) from the store and return True;
    False for anything else (other shells, lines only Hydra handles), and for ``-sc
    install=bash``, after storing the answers for the empty line (the first TAB is then fast)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("-sc", "--shell-completion"):
        return False
    if argv[1] == "install=bash":  # Hydra prints the script; the store of the empty line is made now
        try:
            query(config_name, f"genface-{config_name} ")
        except Exception:  # never in the way of the install
            pass
        return False
    if argv[1] != "query=bash":
        return False
    if "COMP_LINE" not in os.environ:
        return False
    result = query(config_name)
    if result is None:
        return False
    print(" ".join(result))
    return True
