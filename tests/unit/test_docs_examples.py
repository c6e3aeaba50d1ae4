"""Every example in the docs is loaded or checked, so none goes stale.

- each ```yaml block parses; a monitors file (``monitors:``) is validated as ``telewatch monitors
  validate`` would, an alerting file (``channels:`` / ``rules:``) as the alerting configuration;
- each ``telewatch …`` command line in a shell block names a command that exists and only options that
  command has.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from telewatch.alerts.config import parse_alerting_config
from telewatch.cli.app import app
from telewatch.monitors.config import parse_monitors

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([*ROOT.joinpath("docs").glob("*.md"), ROOT / "README.md"])
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)


def _blocks(lang: set[str]) -> list[tuple[str, int, str]]:
    out = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            if m.group(1).lower() in lang:
                line = text[: m.start()].count("\n") + 1
                out.append((f"{doc.name}:{line}", line, m.group(2)))
    return out


YAML_BLOCKS = _blocks({"yaml", "yml"})
SHELL_BLOCKS = _blocks({"", "bash", "sh", "shell", "console"})


class _Env(dict[str, str]):
    """Every ``${NAME}`` a doc uses is set (to a plausible value)."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return "http://127.0.0.1:9/x" if "URL" in key else "example"


def test_the_docs_have_examples() -> None:
    assert len(YAML_BLOCKS) >= 5
    assert len(SHELL_BLOCKS) >= 10


@pytest.mark.parametrize(("where", "line", "text"), YAML_BLOCKS, ids=[b[0] for b in YAML_BLOCKS])
def test_yaml_example_is_valid(where: str, line: int, text: str) -> None:
    data = yaml.safe_load(text)
    assert data is not None, f"{where}: empty YAML example"
    if isinstance(data, dict) and "monitors" in data:
        parse_monitors(data, source=where, environ=_Env())
    elif isinstance(data, dict) and ({"channels", "rules"} & set(data) or "alerting" in data):
        if "alerting" in data and not isinstance(data["alerting"], dict):
            return
        parse_alerting_config(data, source="<config>")


def _command_lines() -> list[tuple[str, str]]:
    out = []
    for where, _line, text in SHELL_BLOCKS:
        joined = re.sub(r"\\\n\s*", " ", text)
        for raw in joined.splitlines():
            line = raw.split(" #", 1)[0].strip()
            m = re.match(r"^(?:\$ )?(?:\S*/)?telewatch (.+)$", line)
            if m and "…" not in line and "..." not in line:
                out.append((where, m.group(1)))
    return out


COMMANDS = _command_lines()


@pytest.mark.parametrize(("where", "args"), COMMANDS, ids=[f"{w}:{a[:40]}" for w, a in COMMANDS])
def test_command_example_names_real_commands_and_options(where: str, args: str) -> None:
    command: Any = typer.main.get_command(app)  # typer's own (vendored) click objects
    words = shlex.split(args.replace("|", " | ").split(" | ")[0], comments=True)
    ctx_words = list(words)
    while hasattr(command, "commands") and ctx_words and not ctx_words[0].startswith("-"):
        name = ctx_words.pop(0)
        sub = command.commands.get(name)
        assert sub is not None, f"{where}: `telewatch {args}`: no command {name!r}"
        command = sub
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)} | {"--help"}
    for word in ctx_words:
        if word.startswith("--"):
            option = word.split("=", 1)[0]
            assert option in known, f"{where}: `telewatch {args}`: {option} is not an option of that command"


def test_the_example_monitors_file_is_valid() -> None:
    from telewatch.monitors.config import read_yaml

    data, _ = read_yaml(ROOT / "examples" / "monitors.yaml")
    parse_monitors(data, environ=_Env())
