"""Every `scenesense ...` command shown in the README and the documentation parses: no unknown
command or option, every `-c` config exists; and the pages speak to users only."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from scenesense.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def _shell_commands(page: Path) -> list[str]:
    """The `scenesense` commands of the page's bash blocks, continuation lines joined."""
    commands = []
    for lang, body in _FENCE.findall(page.read_text(encoding="utf-8")):
        if lang not in ("bash", "sh", "console", ""):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            line = re.sub(r"^(?:[A-Z_]+=\S+\s+)+", "", line)  # environment assignments
            line = re.sub(r"^(\S*/)?\.venv/bin/", "", line)
            for part in re.split(r"\s*(?:&&|\||;)\s*", line):
                if part.startswith("scenesense "):
                    commands.append(part)
    return commands


COMMANDS = [(page, cmd) for page in PAGES for cmd in _shell_commands(page)]


def test_the_pages_show_commands():
    assert len(COMMANDS) > 30
    assert {page.name for page, _ in COMMANDS} >= {"README.md", "getting-started.md"}


@pytest.mark.parametrize(("page", "command"), COMMANDS,
                         ids=[f"{p.relative_to(ROOT)}:{c[:60]}" for p, c in COMMANDS])
def test_every_shown_command_parses(page, command):
    argv = shlex.split(command)[1:]
    argv = [a.replace("<", "").replace(">", "") for a in argv]
    try:
        build_parser().parse_args(argv)
    except SystemExit as err:
        pytest.fail(f"{page.relative_to(ROOT)}: `{command}` does not parse (exit {err.code})")
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag in ("-c", "--config") and value.startswith("configs/"):
            assert (ROOT / value).is_file(), f"{page.name}: {value} does not exist"


@pytest.mark.parametrize("page", [*PAGES, *sorted((ROOT / "configs").glob("*.yaml"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_and_configs_speak_to_users_only(page):
    text = page.read_text(encoding="utf-8")
    for phrase in ("shared/", "these machines", "helpers", "the issue", "/work/"):
        assert phrase not in text, f"{page.relative_to(ROOT)} mentions {phrase!r}"
