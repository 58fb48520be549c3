from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from plinth.settings import SETTINGS, load_settings


def test_init_creates_config_and_embedded_stores(project_dir: Path, cli: Callable) -> None:
    r = cli("init", "--project", "flights", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["project"] == "flights"
    assert data["migrations_applied"], "a fresh ledger is migrated by init"
    assert (project_dir / "plinth.yaml").is_file()
    assert (project_dir / ".plinth" / "plinth.db").is_file()
    assert (project_dir / ".plinth" / "artifacts").is_dir()
    assert (project_dir / ".plinth" / ".gitignore").read_text().strip().endswith("*")
    settings = load_settings(project_dir, env={})
    assert settings.project_name == "flights"
    assert settings.config_file == project_dir / "plinth.yaml"


def test_init_refuses_to_overwrite_without_force(project_dir: Path, cli: Callable) -> None:
    assert cli("init").code == 0
    (project_dir / "plinth.yaml").write_text("project: mine\n")
    r = cli("init")
    assert r.code == 2
    assert "already exists" in r.err
    assert "--force" in r.err
    assert (project_dir / "plinth.yaml").read_text() == "project: mine\n"
    r = cli("init", "--force", "--project", "again")
    assert r.code == 0, r.err
    assert "project: again" in (project_dir / "plinth.yaml").read_text()


def test_init_into_a_directory_argument(project_dir: Path, cli: Callable) -> None:
    r = cli("init", "sub/dir")
    assert r.code == 0, r.err
    assert (project_dir / "sub" / "dir" / "plinth.yaml").is_file()
    assert load_settings(project_dir / "sub" / "dir", env={}).project_name == "dir"


def test_init_with_a_bad_uri_writes_nothing(project_dir: Path, cli: Callable) -> None:
    r = cli("init", "--metadata", "mysql://root@localhost/x")
    assert r.code == 2
    assert "metadata" in r.err
    assert "mysql" in r.err
    assert not (project_dir / "plinth.yaml").exists()
    assert r.err.count("\n") == 1, "one line, no traceback"


def test_written_config_round_trips_every_default(project_dir: Path, cli: Callable) -> None:
    assert cli("init", "--artifacts", "store").code == 0
    text = (project_dir / "plinth.yaml").read_text()
    assert "# metadata: sqlite:///.plinth/plinth.db" in text
    written = load_settings(project_dir, env={})
    defaults = load_settings(project_dir, env={}, discover=False)
    for setting in SETTINGS:
        if setting.name == "artifacts":
            assert written.artifacts == "store"
        elif setting.name == "project":
            assert written.project == "proj"
        else:
            assert getattr(written, setting.name) == getattr(defaults, setting.name)
