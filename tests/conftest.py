"""Fixtures shared by every test folder: a clean environment, a project folder, the CLI,
a PostgreSQL schema of one's own and a real S3-compatible server (moto)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import plinth
from plinth.cli.main import main
from plinth.context import Context
from plinth.testing.s3server import TEST_CREDENTIALS, create_bucket, moto_s3_server

PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PLINTH_* variable of the developer's shell leaks into a test; output is 200 wide."""
    for name in list(os.environ):
        if name.startswith("PLINTH_"):
            monkeypatch.delenv(name)
    # Rich tables wrap to the terminal; a pytest-xdist worker has none (80 columns).
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder that is the working directory for the test."""
    folder = tmp_path / "proj"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """A local Ray cluster of 2 CPUs, one per session (per xdist worker), started on first
    use (~7 s) and shared by the ray features engine and the ray pipeline executor tests."""
    ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def migrated_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded ledger migrated once per session (a project ``proj``, nothing else).

    Migrating a fresh SQLite database costs ~60 ms; the ``project`` fixture copies this one
    instead. Tests of migrating itself open their own databases."""
    folder = tmp_path_factory.mktemp("template") / "proj"
    folder.mkdir()
    ctx = plinth.init(folder, system_metrics=False)
    assert ctx.project.name == "proj"
    ctx.close()
    ledger = folder / ".plinth" / "plinth.db"
    assert ledger.is_file()
    assert not ledger.with_name("plinth.db-wal").exists(), "closed ledgers are checkpointed"
    return ledger


@pytest.fixture
def project(project_dir: Path, migrated_ledger: Path) -> Iterator[Context]:
    """A fresh embedded project in ``project_dir``, made current for the API (system metrics
    off unless a test turns them on); any run a test leaves active is ended."""
    from plinth.tracking.runs import active_run

    (project_dir / ".plinth").mkdir()
    shutil.copyfile(migrated_ledger, project_dir / ".plinth" / "plinth.db")
    ctx = plinth.init(project_dir, system_metrics=False)
    assert ctx.ledger.migrations_applied == ()
    yield ctx
    while (run := active_run()) is not None:
        run.end("finished")
    ctx.close()


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run the plinth CLI in-process: ``cli("init", "--json")`` -> Result(code, out, err)."""

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def pg_engine() -> Iterator[sa.Engine]:
    """A plain engine on the test database, for creating and inspecting schemas."""
    engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 5})
    yield engine
    engine.dispose()


@pytest.fixture
def pg_schema(pg_engine: sa.Engine) -> Iterator[str]:
    """A fresh, empty schema, dropped (CASCADE) after the test."""
    name = f"t_{uuid.uuid4().hex}"
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    yield name
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The endpoint URL of a moto S3 server, started once per test session."""
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fake AWS credentials in the environment, real ones hidden; restored after the test."""
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    for name, value in TEST_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return dict(TEST_CREDENTIALS)


@pytest.fixture
def s3_bucket(moto_endpoint: str, aws_env: dict[str, str]) -> str:
    """A fresh, empty bucket on the moto server."""
    return create_bucket(moto_endpoint)
