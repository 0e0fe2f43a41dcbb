"""A recipe page as a script: the command lines of its shell blocks, in order, each with the
comment written after it, so a test can run the recipe exactly as the page shows it."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from crmbridge.cli.app import main

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Line:
    env: dict[str, str]  # VAR=value before the command
    args: list[str]  # the command and its arguments
    comment: str  # what the page says after it ("" when nothing)

    @property
    def exit_code(self) -> int:
        """The exit code the comment announces (``(exit 2)``), else 0."""
        found = re.search(r"\(exit (\d+)\)", self.comment)
        return int(found.group(1)) if found else 0


def script(page: str) -> list[Line]:
    """The command lines of the page's ```sh blocks (continuations joined)."""
    text = (ROOT / page).read_text(encoding="utf-8")
    lines: list[Line] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for raw in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(raw, comments=True)
            comment = raw.split(" # ", 1)[1].strip() if " # " in raw else ""
            if not tokens:
                continue
            env = {}
            while re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", tokens[0]):
                name, _, value = tokens.pop(0).partition("=")
                env[name] = value
            lines.append(Line(env, tokens, comment))
    return lines


def crmbridge(line: Line, monkeypatch: pytest.MonkeyPatch, replace: dict[str, str]) -> int:
    """Run a ``crmbridge`` line in this process (with its variables and the ``replace``d
    parts of its arguments: the test's own URLs and ports); its exit code."""
    assert line.args[0] == "crmbridge", line
    args = [_replaced(arg, replace) for arg in line.args[1:]]
    with monkeypatch.context() as patch:
        for name, value in line.env.items():
            patch.setenv(name, value)
        with pytest.raises(SystemExit) as info:
            main(args)
    code = info.value.code
    return code if isinstance(code, int) else 0


def _replaced(arg: str, replace: dict[str, str]) -> str:
    for old, new in replace.items():
        arg = arg.replace(old, new)
    return arg


__all__ = ["Line", "crmbridge", "script"]
