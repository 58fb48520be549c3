"""Docs keep up with the code: every setting and every CLI command is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from plinth.cli.main import COMMANDS
from plinth.settings import SETTINGS, Setting

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_documented(setting: Setting) -> None:
    text = (ROOT / "docs" / "settings.md").read_text()
    name = setting.name
    assert f"`{name}`" in text, f"docs/settings.md does not document `{name}`"
    assert f"`PLINTH_{name.upper()}`" in text


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_is_in_the_cli_reference(command: str) -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    assert f"plinth {command}" in text


def test_readme_opens_with_the_two_commands() -> None:
    lines = [ln for ln in (ROOT / "README.md").read_text().splitlines() if ln.strip()]
    block = lines[lines.index("```sh") + 1 : lines.index("```sh") + 3]
    assert block == ["make demo", "make test"]
