from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest


def test_doctor_on_a_fresh_project_is_all_ok(project_dir: Path, cli: Callable) -> None:
    assert cli("init").code == 0
    r = cli("doctor", "--json")
    assert r.code == 0, r.out + r.err
    data = json.loads(r.out)
    assert data["ok"] is True
    names = [c["name"] for c in data["checks"]]
    assert names == ["config", "metadata", "artifacts", "online_store", "executor"]
    metadata = data["checks"][1]
    assert "schema at" in metadata["detail"]


def test_doctor_before_init_fails_the_metadata_check(project_dir: Path, cli: Callable) -> None:
    r = cli("doctor", "--json")
    assert r.code == 1
    checks = {c["name"]: c for c in json.loads(r.out)["checks"]}
    assert checks["metadata"]["ok"] is False
    assert "plinth init" in checks["metadata"]["hint"]
    assert not (project_dir / ".plinth" / "plinth.db").exists(), "doctor never creates stores"


def test_doctor_prints_a_table(project_dir: Path, cli: Callable) -> None:
    assert cli("init").code == 0
    r = cli("doctor")
    assert r.code == 0
    for word in ("metadata", "artifacts", "online_store", "ok"):
        assert word in r.out


def test_doctor_reports_unreachable_postgres_and_redis(
    project_dir: Path, cli: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("init").code == 0
    monkeypatch.setenv("PLINTH_METADATA", "postgresql+psycopg://root:s3cretMARK@127.0.0.1:1/x")
    monkeypatch.setenv("PLINTH_ONLINE_STORE", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("PLINTH_CONNECT_TIMEOUT", "2")
    r = cli("doctor", "--json")
    assert r.code == 1
    checks = {c["name"]: c for c in json.loads(r.out)["checks"]}
    assert not checks["metadata"]["ok"]
    assert not checks["online_store"]["ok"]
    assert checks["artifacts"]["ok"]
    assert "s3cretMARK" not in r.out + r.err


def test_doctor_checks_the_real_redis(
    project_dir: Path, cli: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("init").code == 0
    monkeypatch.setenv("PLINTH_ONLINE_STORE", "redis://127.0.0.1:6379/0")
    r = cli("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(r.out)["checks"]}
    assert checks["online_store"]["ok"], checks["online_store"]
