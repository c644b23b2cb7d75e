"""What the Hydra CLIs (``genface-train``, ``genface-compare``) do before and after a run fails.

* :func:`run_hydra` checks, **before** Hydra starts, that the output folder the command line
  asks for can be created and written (``hydra.run.dir``, ``hydra.sweep.dir`` with ``-m``,
  ``paths.log_dir`` / ``$GENFACE_LOG_DIR``, ``paths.root_dir`` / ``$GENFACE_ROOT``). Hydra
  would otherwise fail first, while setting up its log file, with ``FileNotFoundError``,
  ``Read-only file system`` or ``Unable to configure handler 'file'``.
* :func:`report_errors` wraps a Hydra task function: an error that genface raised for a user
  (a :class:`~genface.errors.GenfaceError`, or any exception raised from genface's own code)
  is printed as its message alone, one line naming its type; the traceback goes to the run's
  log file, and ``HYDRA_FULL_ERROR=1`` prints it as before. Errors raised inside torch or
  Lightning keep Hydra's usual report.
* When Hydra rejects an override before the run starts (``trainer.max_stepz=5``: "Key
  'max_stepz' is not in struct"), :func:`run_hydra` adds the nearest valid key.

This module imports only the standard library at import time, so ``--help`` stays fast.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

_GENFACE_DIR = Path(__file__).resolve().parents[1]
_INFO_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--cfg", "-c", "--info", "-i",
               "--shell-completion", "-sc", "--resolve", "-p", "--package"}
_state: dict[str, Any] = {"task_started": False, "prog": "genface"}


def check_writable(directory: str | Path, what: str = "output folder", fix: str = "") -> Path:
    """Create ``directory`` if needed and write (then delete) a probe file in it.

    Raises:
        OutputDirError: the folder cannot be created or written; the message names it, the
            reason (``errno`` text) and ``fix``.
    """
    from genface.errors import OutputDirError

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".genface_write_test{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        reason = e.strerror or str(e)
        where = f" ('{e.filename}')" if getattr(e, "filename", None) and str(e.filename) != str(directory) else ""
        raise OutputDirError(
            f"cannot write to the {what} {directory}: {reason}{where}."
            + (f" {fix}" if fix else "")
        ) from e
    return directory


# -- before Hydra ------------------------------------------------------------------------------


def _overrides(argv: list[str]) -> dict[str, str]:
    out = {}
    for a in argv:
        if a.startswith("-") or "=" not in a:
            continue
        k, v = a.split("=", 1)
        out[k.lstrip("+")] = v.strip("'\"")
    return out


def _static_part(value: str) -> str | None:
    """The folder part of ``value`` before any ``${...}`` interpolation (``None`` if none)."""
    if "${" not in value:
        return value
    head = value.split("${", 1)[0]
    if not head:
        return None
    return head if head.endswith("/") else os.path.dirname(head) or None


def output_folder_from_argv(argv: list[str]) -> tuple[Path, str] | None:
    """The folder a Hydra run of genface will write to, as far as the command line tells, and
    the override or variable that sets it; ``None`` for info-only commands (``--help``, ``--cfg``)."""
    if any(a.split("=", 1)[0] in _INFO_FLAGS for a in argv):
        return None
    ov = _overrides(argv)
    multirun = "-m" in argv or "--multirun" in argv
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    if key in ov and (p := _static_part(ov[key])):
        return Path(p), key
    if "paths.log_dir" in ov and (p := _static_part(ov["paths.log_dir"])):
        return Path(p), "paths.log_dir"
    if os.environ.get("GENFACE_LOG_DIR"):
        return Path(os.environ["GENFACE_LOG_DIR"]), "GENFACE_LOG_DIR"
    root, src = ".", "the current folder"
    if "paths.root_dir" in ov and (p := _static_part(ov["paths.root_dir"])):
        root, src = p, "paths.root_dir"
    elif os.environ.get("GENFACE_ROOT"):
        root, src = os.environ["GENFACE_ROOT"], "GENFACE_ROOT"
    return Path(root) / "logs", src


def precheck_output_folder(argv: list[str], prog: str) -> None:
    """Exit with one clear message (status 2) when the output folder cannot be written."""
    from genface.errors import OutputDirError

    found = output_folder_from_argv(argv)
    if found is None:
        return
    folder, source = found
    fix = ("Choose a folder you can write, e.g. hydra.run.dir=<folder> or paths.log_dir=<folder> "
           "(or set GENFACE_LOG_DIR).")
    try:
        check_writable(folder, what=f"output folder (from {source})", fix=fix)
    except OutputDirError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


#: command-line choice -> (the Hydra plugin package it needs, the genface extra that installs it)
PLUGIN_EXTRAS: dict[str, tuple[str, str]] = {
    "hparams_search": ("hydra_plugins.hydra_optuna_sweeper", "sweeps"),
    "hydra/sweeper=optuna": ("hydra_plugins.hydra_optuna_sweeper", "sweeps"),
    "hydra/launcher=joblib": ("hydra_plugins.hydra_joblib_launcher", "sweeps"),
    "hydra/launcher=submitit": ("hydra_plugins.hydra_submitit_launcher", "cluster"),
}


def missing_plugin(argv: list[str]) -> str | None:
    """The one-line message for a sweeper or launcher the command line asks for whose Hydra
    plugin is not installed (Hydra itself would only say ``Could not find 'hydra/sweeper/optuna'``)."""
    import importlib.util

    for a in argv:
        key, _, value = a.lstrip("+").partition("=")
        for choice, (package, extra) in PLUGIN_EXTRAS.items():
            want, _, option = choice.partition("=")
            if key == want and value and (not option or value.startswith(option)):
                try:
                    found = importlib.util.find_spec(package) is not None
                except ModuleNotFoundError:
                    found = False
                if not found:
                    return f"{a} needs the Hydra plugin {package.split('.')[-1]}, which is not installed: pip install 'genface[{extra}]'"
    return None


# -- after a failure -----------------------------------------------------------------------------


def full_error() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def _unwrap(e: BaseException) -> BaseException:
    """The error under Hydra's ``InstantiationException`` wrappers."""
    while type(e).__name__ == "InstantiationException" and e.__cause__ is not None:
        e = e.__cause__
    return e


def is_user_facing(e: BaseException) -> bool:
    """True for a :class:`~genface.errors.GenfaceError` or an error raised by genface's own code."""
    from genface.errors import GenfaceError

    if isinstance(e, GenfaceError):
        return True
    tb = e.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return False
    try:
        return Path(last.tb_frame.f_code.co_filename).resolve().is_relative_to(_GENFACE_DIR)
    except (OSError, ValueError):
        return False


def _log_traceback_to_files(e: BaseException) -> str | None:
    """Write ``e``'s traceback to the root logger's file handlers (Hydra's run log); their path."""
    text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    where = None
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.FileHandler):
            record = logging.LogRecord("genface", logging.ERROR, __file__, 0, "run failed:\n%s", (text,), None)
            h.handle(record)
            where = h.baseFilename
    return where


def format_error(e: BaseException) -> str:
    """``<Type>: <message>`` on one paragraph (the message as genface wrote it)."""
    return f"{type(e).__name__}: {e}"


def report_errors(task: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Decorate a Hydra task function so that a user-facing error prints its message alone.

    The process exits with status 1 after printing ``<prog>: error: <Type>: <message>`` and
    where the traceback was written; with ``HYDRA_FULL_ERROR=1`` the error propagates to Hydra
    unchanged (full traceback).
    """

    @functools.wraps(task)
    def wrapper(cfg):
        _state["task_started"] = True
        try:
            return task(cfg)
        except Exception as raised:
            e = _unwrap(raised)
            if full_error() or not is_user_facing(e):
                raise
            log_file = _log_traceback_to_files(raised)
            print(f"{_state['prog']}: error: {format_error(e)}", file=sys.stderr)
            tail = f" (also in {log_file})" if log_file else ""
            print(f"Set HYDRA_FULL_ERROR=1 for the traceback{tail}.", file=sys.stderr)
            raise SystemExit(1) from None

    return wrapper


def _flat_keys(node: Any, prefix: str = "") -> list[str]:
    from omegaconf import DictConfig

    keys = []
    if isinstance(node, DictConfig):
        for k in node.keys():
            path = f"{prefix}{k}"
            keys.append(path)
            try:
                child = node._get_node(k)
            except Exception:
                continue
            keys.extend(_flat_keys(child, path + "."))
    return keys


def suggest_override_keys(argv: list[str], config_name: str) -> list[str]:
    """A hint per ``key=value`` override whose key is not in the composed config, with the
    nearest valid key (difflib); ``+key=`` / ``~key`` overrides are left alone."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from genface.config import register_configs

    register_configs()
    plain = [a for a in argv if not a.startswith(("-", "+", "~")) and "=" in a]
    groups = [a for a in plain if "." not in a.split("=", 1)[0]]
    dotted = [a.split("=", 1)[0] for a in plain if "." in a.split("=", 1)[0] and not a.startswith("hydra.")]

    def composed(overrides: list[str]):
        GlobalHydra.instance().clear()
        try:
            with initialize_config_module(config_module="genface.configs", version_base="1.3"):
                return compose(config_name=config_name, overrides=overrides)
        except Exception:
            return None
        finally:
            GlobalHydra.instance().clear()

    cfg = composed([])
    if cfg is None:
        return []
    accepted: list[str] = []
    for g in groups:  # keep the group choices (model=vae) that compose, so their keys count
        with_g = composed([*accepted, g])
        if with_g is not None:
            accepted.append(g)
            cfg = with_g
    valid = _flat_keys(cfg)
    valid_set = set(valid)
    hints = []
    for key in dotted + [a.split("=", 1)[0] for a in groups]:
        if key in valid_set:
            continue
        if "." not in key:  # a group choice or top-level key
            choices = [k for k in valid if "." not in k]
        else:
            parent = key.rsplit(".", 1)[0]
            choices = [k for k in valid if k.rsplit(".", 1)[0] == parent] or valid
        close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
        if close:
            hints.append(f"'{key}' is not a key of this config; did you mean '{close[0]}'? "
                         f"(prefix it with + to add a new key)")
        else:
            hints.append(f"'{key}' is not a key of this config (prefix it with + to add a new key)")
    return hints


def run_hydra(hydra_main: Callable[[], Any], config_name: str, prog: str) -> Any:
    """Run a ``@hydra.main`` function after :func:`precheck_output_folder`; when Hydra rejects
    the command line before the run starts, print the nearest valid key of each unknown one."""
    argv = sys.argv[1:]
    if (message := missing_plugin(argv)) is not None:
        print(f"{prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)
    precheck_output_folder(argv, prog)
    _state["task_started"] = False
    _state["prog"] = prog
    try:
        return hydra_main()
    except SystemExit as e:
        if e.code not in (0, None) and not _state["task_started"]:
            try:
                hints = suggest_override_keys(argv, config_name)
            except Exception:  # a hint must never hide the original error
                hints = []
            for h in hints:
                print(f"{prog}: hint: {h}", file=sys.stderr)
        raise
