"""Fast ``--help`` for the Hydra CLIs: the command's page without composing any config.

Each Hydra command has a help page ``configs/hydra/help/<command>.yaml`` (selected in its
primary config's defaults, lightning-hydra-template style), so Hydra itself renders it too.
Hydra's renderer lists the config groups by loading the config repository once per group
(seconds on a loaded machine, whatever the template asks for), so :func:`maybe_print_help`
renders the same page straight from the YAML and the packaged config folders and exits,
before Hydra, torch or Lightning are imported.

The page's template may use ``${hydra.help.header}``, ``${hydra.help.footer}``,
``${hydra.help.app_name}`` and ``$APP_CONFIG_GROUPS``; an optional ``groups`` list in the
YAML restricts ``$APP_CONFIG_GROUPS`` to the groups the command accepts (prefixes:
``experiment`` also keeps ``experiment/compare``).

A command without ``hydra/help/<command>.yaml`` (``genface-compare``, which accepts no config
groups) keeps its page in its primary config's ``hydra.help`` section; there ``$CONFIG`` is
the config's own keys (its ``defaults`` chain of primary configs and groups merged as plain
YAML, without Hydra's composition) and ``${genface.choices:<group>}`` the options of a group.
``--config-name X`` / ``-cn X`` picks the primary config, as for Hydra.

The argparse commands (``genface-generate``, ``genface-metrics``, ``genface-extract``,
``genface-swap``, ``genface-provenance``) build their parser from the standard library and
light genface modules only, so their own ``--help`` is fast too (tests/test_cli_fast_help.py).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

HELP_FLAGS = ("--help", "-h")


def configs_dir() -> Path:
    """The packaged Hydra config folder (``genface.configs``)."""
    return Path(str(files("genface.configs")))


def config_groups(root: Path | None = None, groups: Sequence[str] | None = None) -> dict[str, list[str]]:
    """``{group: [options]}`` of the config folder, Hydra's own groups (``hydra/``) left out.

    Args:
        root: the config folder; default :func:`configs_dir`.
        groups: keep only these groups and the groups below them; ``None`` = all.
    """
    root = root or configs_dir()
    out: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.yaml")):
        group = path.parent.relative_to(root).as_posix()
        if group == "." or group == "hydra" or group.startswith("hydra/"):
            continue
        if groups is not None and not any(group == g or group.startswith(g + "/") for g in groups):
            continue
        out.setdefault(group, []).append(path.stem)
    return {g: sorted(o) for g, o in sorted(out.items())}


def choices(group: str, root: Path | None = None) -> str:
    """The options of a config group, comma-separated (``compare`` = the model presets of
    ``experiment/compare``); the ``${genface.choices:<group>}`` resolver of the help pages."""
    root = root or configs_dir()
    folder = root / ("experiment/compare" if group == "compare" else group)
    return ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def light_config(config_name: str, root: Path | None = None) -> dict:
    """A primary config with its ``defaults`` chain merged as plain YAML (no interpolation, no
    structured schema): other primary configs (``- compare``) and ``group: option`` entries
    (``- paths: default``); ``_self_`` where it is listed, optional or missing entries skipped."""
    import yaml

    root = root or configs_dir()
    raw = yaml.safe_load((root / f"{config_name}.yaml").read_text()) or {}
    own = {k: v for k, v in raw.items() if k != "defaults"}
    merged: dict = {}
    entries = raw.get("defaults") or []
    if "_self_" not in entries:
        entries = [*entries, "_self_"]
    for entry in entries:
        if entry == "_self_":
            merged = _merge(merged, own)
        elif isinstance(entry, str) and (root / f"{entry}.yaml").is_file():
            merged = _merge(merged, light_config(entry, root))
        elif isinstance(entry, dict) and len(entry) == 1:
            (group, option), = entry.items()
            group = str(group).removeprefix("optional ").strip()
            path = root / group / f"{option}.yaml"
            if isinstance(option, str) and path.is_file():
                node = yaml.safe_load(path.read_text()) or {}
                node.pop("defaults", None)
                if group == "hydra":
                    merged = _merge(merged, {"hydra": node})
                else:
                    merged = _merge(merged, {group: node})
    return merged


def render_help(command: str, root: Path | None = None, config_name: str | None = None) -> str:
    """The help page of ``command`` as Hydra would print it: ``configs/hydra/help/<command>.yaml``,
    else the ``hydra.help`` section of its primary config (``config_name``, default ``command``)."""
    import yaml

    root = root or configs_dir()
    page_file = root / "hydra" / "help" / f"{command}.yaml"
    cfg: dict = {}
    if page_file.is_file():
        page = yaml.safe_load(page_file.read_text())
    else:
        cfg = light_config(config_name or command, root)
        page = dict(cfg.get("hydra", {}).get("help") or {})
    groups = config_groups(root, page.get("groups"))
    listing = "\n".join(f"{g}: {', '.join(opts)}" for g, opts in groups.items())
    text = str(page["template"])
    for key in ("header", "footer", "app_name"):
        text = text.replace("${hydra.help." + key + "}", str(page.get(key, "")))
    text = re.sub(r"\$\{genface\.choices:([\w/]+)\}", lambda m: choices(m.group(1), root), text)
    if "$CONFIG" in text and "$CONFIG_GROUPS" not in text:
        own = {k: v for k, v in cfg.items() if k != "hydra"}
        text = text.replace("$CONFIG", yaml.safe_dump(own, sort_keys=False, default_flow_style=False).rstrip())
    return text.replace("$APP_CONFIG_GROUPS", listing).rstrip() + "\n"


def _config_name(argv: Sequence[str]) -> str | None:
    """``--config-name X`` / ``--config-name=X`` / ``-cn X`` of a Hydra command line."""
    for i, a in enumerate(argv):
        if a.startswith("--config-name="):
            return a.split("=", 1)[1]
        if a in ("--config-name", "-cn") and i + 1 < len(argv):
            return argv[i + 1]
    return None


def maybe_print_help(command: str, argv: Sequence[str] | None = None) -> bool:
    """Print the help page and return True when ``argv`` asks for ``--help`` (else False)."""
    argv = sys.argv[1:] if argv is None else argv
    if not any(a in HELP_FLAGS for a in argv):
        return False
    sys.stdout.write(render_help(command, config_name=_config_name(argv)))
    return True
