"""The docs stand alone and the README's command table says each command's real options."""

from __future__ import annotations

import re

import click

from safeguarding.cli import main

from .helpers import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_the_docs_cite_no_internal_notes_or_issue_numbers() -> None:
    for path in DOCS:
        text = path.read_text()
        for pattern in (r"\bDIGEST\b", r"\bDECISIONS\b", r"(?i)\bissues? \d+", r"\.\./shared", r"(?i)\bintegrator\b"):
            assert not re.search(pattern, text), (path.name, pattern)


def _command(words: list[str]) -> click.Command:
    command: click.Command = main
    for word in words:
        assert isinstance(command, click.Group), words
        command = command.commands[word]
    return command


def test_the_readme_lists_every_commands_real_options() -> None:
    readme = (REPO / "README.md").read_text()
    rows = re.findall(r"^\| `safeguarding ([a-z -]+?)(?: FILE)?` \| (.*?) \| .*\|$", readme, flags=re.MULTILINE)
    assert len(rows) >= 16
    listed_commands = set()
    for name, options in rows:
        command = _command(name.split())
        listed_commands.add(name)
        real = {opt for param in command.params if isinstance(param, click.Option) for opt in param.opts
                if opt.startswith("--")}
        shown = set(re.findall(r"--[a-z0-9-]+", options))
        assert shown == real, (name, sorted(shown ^ real))

    def leaves(group: click.Group, prefix: str) -> set[str]:
        found: set[str] = set()
        for word, sub in group.commands.items():
            found |= leaves(sub, f"{prefix}{word} ") if isinstance(sub, click.Group) else {f"{prefix}{word}"}
        return found

    assert leaves(main, "") == listed_commands
