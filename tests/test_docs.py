"""The docs are part of the product: check what they promise against the code."""

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = text.split("## Set up", 1)[1].split("## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", setup)


def test_readme_has_exactly_two_setup_commands() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    assert "crmbridge run" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert _readme_commands()[1] in ci


def test_every_doc_the_readme_links_exists() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for link in re.findall(r"\]\(([^)#]+\.md)\)", text):
        assert (ROOT / link).is_file(), link


def test_readme_setup_commands_install_into_a_virtual_environment() -> None:
    # a distribution Python refuses `pip install` outside one (externally-managed-environment)
    for command in _readme_commands():
        assert command.startswith("python3 -m venv .venv && "), command
        rest = command.removeprefix("python3 -m venv .venv && ")
        assert "python3" not in rest, command
        assert all(step.startswith(".venv/bin/") for step in rest.split(" && ")), command


def test_the_bundled_example_copied_into_a_checkout_is_ignored_by_git() -> None:
    ignored = [line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()]
    assert "crmbridge-example/" in ignored


# -- every `crmbridge ...` command the docs show exists, with its options and arguments ------
def _doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _shell_lines(text: str) -> list[str]:
    """The command lines of the ```sh blocks (continuations joined, comments dropped)."""
    lines: list[str] = []
    for block in re.findall(r"```(?:sh|bash|shell)\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            # one line may chain commands: a && b, a | b, a > file
            command: list[str] = []
            for token in [*tokens, "&&"]:
                if token in ("&&", "||", "|", ";", ">", ">>"):
                    if command:
                        lines.append(shlex.join(command))
                    command = []
                else:
                    command.append(token)
    return lines


def _crmbridge_args(line: str) -> list[str] | None:
    """The arguments after `crmbridge` (after any VAR=value), or None for other commands."""
    tokens = shlex.split(line)
    while tokens and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", tokens[0]):
        tokens = tokens[1:]
    if tokens[:1] == ["crmbridge"]:
        return tokens[1:]
    if tokens[:3] in (["python3", "-m", "crmbridge"], [".venv/bin/python", "-m", "crmbridge"]):
        return tokens[3:]
    return None


def _leaf(args: list[str]) -> tuple[Any, list[str], list[str]]:
    """(command, its path, the rest of the arguments); AssertionError for an unknown command."""
    import typer.main

    from crmbridge.cli.app import app

    command: Any = typer.main.get_command(app)
    path: list[str] = []
    while getattr(command, "commands", None):
        assert args, f"`crmbridge {' '.join(path)}` needs a command"
        if args[0].startswith("-"):  # an option of the group itself (crmbridge --version)
            return command, path, args
        name, args = args[0], args[1:]
        assert name in command.commands, f"no command `crmbridge {' '.join([*path, name])}`"
        command = command.commands[name]
        path.append(name)
    return command, path, args


def _doc_commands() -> list[tuple[str, list[str], bool]]:
    """(where, arguments, complete) of every crmbridge command line shown in the docs: lines of
    shell blocks are complete commands; `crmbridge ...` in running text may leave parts out."""
    found: list[tuple[str, list[str], bool]] = []
    for doc in _doc_files():
        text = doc.read_text(encoding="utf-8")
        name = str(doc.relative_to(ROOT))
        for line in _shell_lines(text):
            args = _crmbridge_args(line)
            if args is not None:
                found.append((f"{name}: {line}", args, True))
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        for span in re.findall(r"`((?:crmbridge|python3 -m crmbridge) [^`]*)`", prose):
            args = _crmbridge_args(span.replace("...", ""))
            if args is not None:
                found.append((f"{name}: `{span}`", args, False))
    return found


def test_the_docs_show_crmbridge_commands() -> None:
    commands = _doc_commands()
    assert len([c for c in commands if c[2]]) > 20
    assert any("lead-sync" in where for where, _, _ in commands)


_DOC_COMMANDS = _doc_commands()


@pytest.mark.parametrize(
    ("where", "args", "complete"), _DOC_COMMANDS, ids=[c[0] for c in _DOC_COMMANDS]
)
def test_every_documented_command_line_parses(where: str, args: list[str], complete: bool) -> None:
    command, path, rest = _leaf(args)
    if complete:  # options and arguments exactly as the CLI parses them
        try:
            command.make_context(" ".join(["crmbridge", *path]), list(rest))
        except Exception as err:
            pytest.fail(f"{where}: {type(err).__name__}: {err}")
        return
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    for token in rest:
        if token.startswith("-"):
            assert token.split("=", 1)[0] in known, f"{where}: no option {token}"


def test_a_wrong_command_line_in_the_docs_would_be_found() -> None:
    with pytest.raises(AssertionError, match="no command `crmbridge discover`"):
        _leaf(["discover", "crm"])
    command, _, rest = _leaf(["show", "RUN"])
    with pytest.raises(Exception, match="valid integer"):
        command.make_context("crmbridge show", rest)
    command, _, rest = _leaf(["connection", "add", "x", "--typo", "csv"])
    with pytest.raises(Exception, match="--typo"):
        command.make_context("crmbridge connection add", rest)
