"""Projects are physically apart: each has its own ledger (SQLite file or PostgreSQL schema)
and blob store (folder or S3 prefix); a ledger opened for one never sees another's records,
and it records the user it was opened for."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")

from plinth.api.bootstrap import create_project, open_accounts  # noqa: E402
from plinth.api.config import ServerConfig, config_from, load_config  # noqa: E402
from plinth.api.spaces import Spaces  # noqa: E402
from plinth.errors import ConflictError  # noqa: E402
from plinth.testing.server import serve_in_thread, start_server  # noqa: E402

PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"


@pytest.fixture
def prefix() -> Iterator[str]:
    """A schema prefix of one's own; every schema made under it is dropped afterwards."""
    name = f"t{uuid.uuid4().hex[:12]}_"
    yield name
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        schemas = conn.execute(
            sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"), {"p": name + "%"}
        ).scalars()
        for schema in list(schemas):
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(
    params=[
        "sqlite-folder",
        pytest.param("postgresql-s3", marks=[pytest.mark.postgres, pytest.mark.s3]),
    ]
)
def config(request: pytest.FixtureRequest, tmp_path: Path) -> ServerConfig:
    if request.param == "sqlite-folder":
        return ServerConfig(root=tmp_path)
    endpoint = request.getfixturevalue("moto_endpoint")
    request.getfixturevalue("aws_env")
    bucket = request.getfixturevalue("s3_bucket")
    return config_from(
        tmp_path,
        {
            "metadata": PG_URL,
            "artifacts": f"s3://{bucket}/plinth",
            "s3_endpoint": endpoint,
            "schema_prefix": request.getfixturevalue("prefix"),
        },
        env={},
    )


def test_a_projects_records_and_blobs_are_its_own(config: ServerConfig) -> None:
    spaces = Spaces(config)
    accounts = open_accounts(config)
    try:
        for name in ("alpha", "beta"):
            create_project(accounts, spaces, name, by="root")
        with pytest.raises(ConflictError):
            create_project(accounts, spaces, "alpha", by="root")
        alpha = spaces.ledger("alpha", "ada")
        project = alpha.projects.ensure_project("alpha")
        experiment = alpha.projects.ensure_experiment(project.id, "exp")
        run = alpha.runs.create_run(experiment.id, name="only-in-alpha")
        assert alpha.runs.get_run(run.id).created_by == "ada"
        assert [r.id for r in spaces.ledger("alpha", "bob").runs.list_runs()] == [run.id]
        assert spaces.ledger("beta", "ada").runs.list_runs() == []

        ref = spaces.blobs("alpha").put_bytes(b"alpha's artifact")
        assert spaces.blobs("alpha").read_bytes(ref.digest) == b"alpha's artifact"
        assert not spaces.blobs("beta").exists(ref.digest)
        assert spaces.names() == ["alpha", "beta"]
    finally:
        spaces.close()
        accounts.close()


@pytest.mark.postgres
def test_names_that_share_a_postgresql_schema_are_refused(prefix: str, tmp_path: Path) -> None:
    config = config_from(tmp_path, {"metadata": PG_URL, "schema_prefix": prefix}, env={})
    spaces = Spaces(config)
    accounts = open_accounts(config)
    try:
        create_project(accounts, spaces, "a-b", by="root")
        with pytest.raises(ConflictError, match="share PostgreSQL schema"):
            create_project(accounts, spaces, "a_b", by="root")
    finally:
        spaces.close()
        accounts.close()


@pytest.mark.postgres
def test_two_servers_on_one_postgresql_database_share_accounts(prefix: str, tmp_path: Path) -> None:
    """Replicas: a project and a token made through one server work on the other."""
    first = start_server(tmp_path / "one", metadata=PG_URL, schema_prefix=prefix)
    try:
        second_root = tmp_path / "two"
        second_root.mkdir()
        (second_root / "server.yaml").write_text(
            (first.root / "server.yaml").read_text(), encoding="utf-8"
        )
        second = serve_in_thread(load_config(second_root, env={}), first.admin_token)
        try:
            first.create_project("alpha")
            token = first.token("ada", "alpha", "write")
            me = httpx.get(f"{second.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200
            assert me.json()["roles"] == {"alpha": "write"}
        finally:
            second.stop()
    finally:
        first.stop()
