from __future__ import annotations

from pathlib import Path

import pytest

from plinth.errors import ConfigError
from plinth.settings import SETTINGS, find_config, load_settings, redact


def test_defaults_give_the_embedded_mode(tmp_path: Path) -> None:
    s = load_settings(tmp_path, env={})
    assert s.metadata == "sqlite:///.plinth/plinth.db"
    assert s.artifacts == ".plinth/artifacts"
    assert s.config_file is None
    assert s.root == tmp_path.resolve()
    assert s.project_name == tmp_path.name
    assert set(s.sources.values()) == {"default"}


def test_config_found_by_walking_up(tmp_path: Path) -> None:
    (tmp_path / "plinth.yaml").write_text("project: flights\nartifacts: store\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_config(deep) == tmp_path / "plinth.yaml"
    s = load_settings(deep, env={})
    assert s.root == tmp_path
    assert s.project_name == "flights"
    assert s.resolve_path(s.artifacts) == tmp_path / "store"
    assert s.sources["artifacts"] == str(tmp_path / "plinth.yaml")


def test_env_overrides_file_and_overrides_win(tmp_path: Path) -> None:
    (tmp_path / "plinth.yaml").write_text("artifacts: from-file\nconnect_timeout: 3\n")
    s = load_settings(tmp_path, env={"PLINTH_ARTIFACTS": "from-env"})
    assert s.artifacts == "from-env"
    assert s.sources["artifacts"] == "env"
    assert s.connect_timeout == 3.0
    s = load_settings(tmp_path, env={"PLINTH_ARTIFACTS": "from-env"}, overrides={"artifacts": "x"})
    assert s.artifacts == "x"


def test_unknown_key_names_it_and_suggests(tmp_path: Path) -> None:
    (tmp_path / "plinth.yaml").write_text("metdata: sqlite:///x.db\n")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, env={})
    assert "metdata" in info.value.message
    assert "did you mean 'metadata'" in info.value.hint
    assert info.value.exit_code == 2
    assert info.value.field == "metdata"


def test_unknown_env_variable_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PLINTH_ARTIFACT") as info:
        load_settings(tmp_path, env={"PLINTH_ARTIFACT": "x"})
    assert "artifacts" in info.value.hint


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("metadata: [unclosed\nartifacts: x\n", "plinth.yaml:"),
        ("- a\n- b\n", "must be a mapping"),
        ("connect_timeout: soon\n", "connect_timeout"),
        ("connect_timeout: -1\n", "connect_timeout"),
        ("artifacts: {a: 1}\n", "artifacts"),
        ("metadata: ''\n", "metadata"),
    ],
)
def test_malformed_config(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "plinth.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, env={})
    assert needle in info.value.message


def test_empty_file_is_defaults(tmp_path: Path) -> None:
    (tmp_path / "plinth.yaml").write_text("# nothing yet\n")
    assert load_settings(tmp_path, env={}).metadata == "sqlite:///.plinth/plinth.db"


def test_every_setting_is_declared_with_help() -> None:
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    for s in SETTINGS:
        assert s.help.strip(), s.name
        assert s.env == "PLINTH_" + s.name.upper()


@pytest.mark.parametrize(
    ("uri", "secret"),
    [
        ("postgresql+psycopg://alice:hunter2@db:5432/ml", "hunter2"),
        ("redis://:hunter2@cache:6379/0", "hunter2"),
        ("postgresql://alice:p%40ss@db/ml?sslmode=require", "p%40ss"),
        ("s3://bucket/prefix?aws_secret_access_key=hunter2", "hunter2"),
        ("postgresql://db/ml?password=hunter2&sslmode=require", "hunter2"),
    ],
)
def test_redact_removes_secrets(uri: str, secret: str) -> None:
    shown = redact(uri)
    assert secret not in shown
    assert "***" in shown


def test_redact_keeps_uris_without_secrets() -> None:
    assert redact("postgresql+psycopg://alice@db/ml") == "postgresql+psycopg://alice@db/ml"
    assert redact("sqlite:///.plinth/plinth.db") == "sqlite:///.plinth/plinth.db"


def test_bad_value_error_does_not_echo_a_secret(tmp_path: Path) -> None:
    (tmp_path / "plinth.yaml").write_text("connect_timeout: postgresql://u:hunter2@h/db\n")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, env={})
    assert "hunter2" not in info.value.one_line()
