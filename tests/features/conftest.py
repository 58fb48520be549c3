"""Fixtures of the feature-store tests: a project whose online store is SQLite or Redis."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import plinth
from plinth.context import Context
from plinth.testing.online_contract import redis_unreachable

REDIS_URI = "redis://127.0.0.1:6379/0"


def _redis_reachable() -> str | None:
    return redis_unreachable(REDIS_URI)


@pytest.fixture(params=["sqlite", "redis"])
def online_project(
    request: pytest.FixtureRequest, project_dir: Path, migrated_ledger: Path
) -> Iterator[Context]:
    """A fresh embedded project (current for the API) whose ``online_store`` setting is
    the SQLite default or Redis under a key prefix of its own."""
    prefix = None
    overrides: dict[str, object] = {"system_metrics": False}
    if request.param == "redis":
        reason = _redis_reachable()
        if reason:
            pytest.skip(reason)
        prefix = f"plinth-test-{uuid.uuid4().hex}:"
        overrides["online_store"] = f"{REDIS_URI}?prefix={prefix}"
    (project_dir / ".plinth").mkdir()
    shutil.copyfile(migrated_ledger, project_dir / ".plinth" / "plinth.db")
    ctx = plinth.init(project_dir, **overrides)
    yield ctx
    ctx.close()
    if prefix is not None:
        import redis

        client = redis.Redis.from_url(REDIS_URI)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def record_definitions() -> object:
    """``record(ctx, *definitions)``: saves each definition's version in the ledger, as
    ``plinth features apply`` does."""

    def record(ctx: Context, *definitions: object) -> None:
        for d in definitions:
            ctx.ledger.features.save_definition(
                ctx.project.id,
                d.kind,  # type: ignore[attr-defined]
                d.name,  # type: ignore[attr-defined]
                d.digest,  # type: ignore[attr-defined]
                d.spec(),  # type: ignore[attr-defined]
            )

    return record
