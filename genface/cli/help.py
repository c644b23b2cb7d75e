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
"""

from __future__ import annotations

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


def render_help(command: str, root: Path | None = None) -> str:
    """The help page of ``command`` (``configs/hydra/help/<command>.yaml``) as Hydra would print it."""
    import yaml

    root = root or configs_dir()
    page = yaml.safe_load((root / "hydra" / "help" / f"{command}.yaml").read_text())
    groups = config_groups(root, page.get("groups"))
    listing = "\n".join(f"{g}: {', '.join(opts)}" for g, opts in groups.items())
    text = str(page["template"])
    for key in ("header", "footer", "app_name"):
        text = text.replace("${hydra.help." + key + "}", str(page.get(key, "")))
    return text.replace("$APP_CONFIG_GROUPS", listing).rstrip() + "\n"


def maybe_print_help(command: str, argv: Sequence[str] | None = None) -> bool:
    """Print the help page and return True when ``argv`` asks for ``--help`` (else False)."""
    argv = sys.argv[1:] if argv is None else argv
    if not any(a in HELP_FLAGS for a in argv):
        return False
    sys.stdout.write(render_help(command))
    return True
