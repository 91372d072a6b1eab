"""The command line's documentation is the command line: every command is in README.md's and
docs/cli.md's command tables, and every option of every command (as the typer app declares it)
is in its docs/cli.md section, in the synopsis and the option table, and no other."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from usage_features.cli import app

ROOT = Path(__file__).resolve().parents[2]
CLI_DOC = (ROOT / "docs" / "cli.md").read_text()
README = (ROOT / "README.md").read_text()
OPTION = re.compile(r"--[a-z][a-z-]*")


def commands() -> dict[str, set[str]]:
    """Each command's options (their long names; --help left out)."""
    group = typer.main.get_command(app)
    return {name: {opt for param in command.params if param.param_type_name == "option"
                   for opt in param.opts if opt.startswith("--") and opt != "--help"}
            for name, command in group.commands.items()}


def table_commands(text: str) -> list[str]:
    """The commands of a page's command table (rows ``| [`name`](...) | ... |``)."""
    return re.findall(r"^\| \[`([a-z-]+)`\]\(", text, flags=re.MULTILINE)


def section(name: str) -> str:
    match = re.search(rf"^## {re.escape(name)}\n(.*?)(?=^## |\Z)", CLI_DOC,
                      flags=re.MULTILINE | re.DOTALL)
    assert match, f"docs/cli.md has no section `## {name}`"
    return match.group(1)


def synopsis(name: str) -> set[str]:
    (line,) = re.findall(rf"^`usage-features {re.escape(name)}\b[^`]*`$", section(name),
                         flags=re.MULTILINE)
    return set(OPTION.findall(line))


def option_table(name: str) -> set[str]:
    rows = re.findall(r"^\| `([^`]*)`", section(name), flags=re.MULTILINE)
    return {OPTION.match(cell).group(0) for cell in rows if OPTION.match(cell)}


@pytest.mark.parametrize("page", ["README.md", "docs/cli.md"])
def test_every_command_is_in_the_command_table(page):
    text = README if page == "README.md" else CLI_DOC
    assert sorted(table_commands(text)) == sorted(commands())


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_option_is_in_the_option_table(name):
    assert option_table(name) == commands()[name]


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_option_but_repo_is_in_the_synopsis(name):
    assert synopsis(name) == commands()[name] - {"--repo"}


def test_an_option_left_out_is_found():
    declared = commands()["refresh"]
    assert "--model" in declared and "--engine" in declared
    without = re.sub(r"^\| `--model PATH` .*\n", "", section("refresh"), flags=re.MULTILINE)
    documented = {OPTION.match(c).group(0) for c in re.findall(r"^\| `([^`]*)`", without,
                                                                 flags=re.MULTILINE)}
    assert declared - documented == {"--model"}
