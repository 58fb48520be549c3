"""The same commands on the team backends: PostgreSQL + S3 (moto), switched by config only."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from plinth.context import Context
from plinth.entities import RecordRef

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


def test_init_demo_doctor_gc_on_postgres_and_s3(
    project_dir: Path,
    cli: Callable,
    pg_schema: str,
    moto_endpoint: str,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metadata = f"postgresql+psycopg://root@127.0.0.1:5432/test?options=-csearch_path%3D{pg_schema}"
    monkeypatch.setenv("PLINTH_S3_ENDPOINT_URL", moto_endpoint)
    r = cli("init", "--metadata", metadata, "--artifacts", f"s3://{s3_bucket}/team", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["artifacts"].startswith(f"s3://{s3_bucket}/team")
    assert not (project_dir / ".plinth" / "plinth.db").exists(), "nothing embedded was made"

    r = cli("doctor", "--json")
    assert r.code == 0, r.out
    targets = {c["name"]: c["target"] for c in json.loads(r.out)["checks"]}
    assert targets["metadata"].startswith("postgresql+psycopg://")

    r = cli("demo", "--quick", "--dir", ".", "--json")
    assert r.code == 0, r.err
    run_id = json.loads(r.out)["run_ids"][0]
    with Context.open(project_dir) as ctx:
        artifacts = ctx.ledger.artifacts.list(RecordRef("run", run_id))
        assert artifacts, "the demo run logged artifacts"
        digest = artifacts[0].digest
        assert ctx.blobs.location(digest).startswith(f"s3://{s3_bucket}/team/")
        orphan = ctx.blobs.put_bytes(b"nobody refers to me")
    r = cli("gc", "--yes", "--grace", "0", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["deleted"] == 1
    with Context.open(project_dir) as ctx:
        assert not ctx.blobs.exists(orphan.digest)
        assert ctx.blobs.exists(digest)
