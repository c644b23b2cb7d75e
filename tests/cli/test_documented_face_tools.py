"""Every ``genface-extract``, ``genface-swap`` and ``genface-provenance`` line that the docs show parses with the
command's own argument parser: each option exists, each value passes its type and choices.

The lines need real photos, videos and a trained swapper, so they are parsed, not run (the
commands themselves run end to end in tests/faces and tests/cli/test_tools.py). Lines inside
shell loops (``for i in ...; do genface-extract ...; done``) count too; shell variables stay
as written, since the parser only sees strings.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from genface.cli import extract as extract_cli
from genface.cli import provenance as provenance_cli
from genface.cli import swap as swap_cli

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([*(ROOT / "docs").rglob("*.md"), ROOT / "README.md"])
PARSERS = {"genface-extract": extract_cli.build_parser, "genface-swap": swap_cli.build_parser,
           "genface-provenance": provenance_cli.build_parser}


def documented_lines(command: str) -> list[tuple[str, list[str]]]:
    """``(page, argv)`` of each ``command`` invocation in the bash blocks of every page."""
    out = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = re.split(r"\s#", line)[0]
                if command not in line:
                    continue
                line = re.sub(r"\$\([^)]*\)", "SUBST", line)  # $(basename $d): one word to the parser
                lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
                lexer.whitespace_split = True
                words = list(lexer)
                # "for ... do genface-extract ...; done" or an environment prefix (VAR=1 genface-swap ...)
                while command in words:
                    words = words[words.index(command) + 1:]
                    end = next((i for i, w in enumerate(words) if set(w) <= set(";&|")), len(words))
                    argv = words[:end]
                    if "<" not in " ".join(argv):
                        out.append((str(page.relative_to(ROOT)), argv))
    return out


def test_the_docs_show_both_commands():
    assert len(documented_lines("genface-extract")) >= 4
    assert len(documented_lines("genface-swap")) >= 1
    assert len(documented_lines("genface-provenance")) >= 1


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_documented_lines_parse(command):
    parser = PARSERS[command]()
    bad = []
    for page, argv in documented_lines(command):
        try:
            parser.parse_args(argv)
        except SystemExit:
            bad.append(f"{page}: {command} {' '.join(argv)}")
    assert not bad, "documented lines the parser rejects:\n" + "\n".join(bad)


def test_a_wrong_option_is_caught():
    """The check can fail: an option the command does not have is rejected."""
    with pytest.raises(SystemExit):
        extract_cli.build_parser().parse_args(["in", "out", "--detectr", "hog"])
    with pytest.raises(SystemExit):
        extract_cli.build_parser().parse_args(["in", "out", "--detector", "nope"])
