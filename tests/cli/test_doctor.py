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
    statuses = {c["name"]: (c["ok"], c["status"]) for c in data["checks"]}
    assert statuses["metadata"] == (True, "ok")
    assert statuses["online_store"] == (True, "ok")
    assert statuses["executor"] == (True, "ok")
    assert not (project_dir / ".plinth" / "online.db").exists(), "doctor never creates stores"


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
    for word in ("metadata", "artifacts", "online_store", "ok", "executor", "in-process"):
        assert word in r.out
    assert "FAIL" not in r.out


def test_doctor_reports_unreachable_postgres_and_redis_without_their_secrets(
    project_dir: Path, cli: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("redis", reason="redis-py is not installed (the 'redis' extra)")
    assert cli("init").code == 0
    monkeypatch.setenv("PLINTH_METADATA", "postgresql+psycopg://root:s3cretMARK@127.0.0.1:1/x")
    monkeypatch.setenv("PLINTH_ONLINE_STORE", "redis://:s3cretMARK@127.0.0.1:1/0")
    monkeypatch.setenv("PLINTH_CONNECT_TIMEOUT", "2")
    r = cli("doctor", "--json")
    assert r.code == 1
    checks = {c["name"]: c for c in json.loads(r.out)["checks"]}
    assert not checks["metadata"]["ok"]
    assert checks["online_store"]["status"] == "fail"
    assert checks["online_store"]["target"] == "redis://:***@127.0.0.1:1/0"
    assert "Redis" in checks["online_store"]["hint"]
    assert checks["artifacts"]["ok"]
    assert "s3cretMARK" not in r.out + r.err


def test_doctor_checks_a_reachable_online_store(
    project_dir: Path, cli: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("init").code == 0
    (project_dir / ".plinth" / "online.db").touch()  # an existing file is opened and checked
    r = cli("doctor", "--json")
    assert r.code == 0, r.out + r.err
    check = {c["name"]: c for c in json.loads(r.out)["checks"]}["online_store"]
    assert (check["ok"], check["detail"]) == (True, "reachable and writable")


def test_doctor_passes_with_the_executor_set_to_a_backend_not_installed(
    project_dir: Path, cli: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, ray:// without the ray extra exited 2."""
    assert cli("init").code == 0
    monkeypatch.setenv("PLINTH_EXECUTOR", "ray://127.0.0.1:10001")
    r = cli("doctor", "--json")
    assert r.code == 0, r.out + r.err
    checks = {c["name"]: c for c in json.loads(r.out)["checks"]}
    assert checks["executor"]["target"] == "ray://127.0.0.1:10001"
    assert (
        "not contacted" in checks["executor"]["detail"]
        or "not installed" in checks["executor"]["detail"]
    )


def test_doctor_refuses_an_online_store_of_unknown_scheme_as_a_usage_error(
    project_dir: Path, cli: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("init").code == 0
    monkeypatch.setenv("PLINTH_ONLINE_STORE", "memcached://cache:11211")
    r = cli("doctor", "--json")
    assert r.code == 2
    assert "online_store" in r.out + r.err


def test_doctor_rows_are_doctor_checks_and_the_old_name_check_warns(project_dir: Path) -> None:
    from plinth import doctor
    from plinth.settings import load_settings

    rows = doctor.run_checks(load_settings(project_dir))
    assert [row.name for row in rows][:3] == ["config", "metadata", "artifacts"]
    assert all(isinstance(row, doctor.DoctorCheck) for row in rows)
    with pytest.deprecated_call(match="plinth.doctor.DoctorCheck"):
        old = doctor.Check
    assert old is doctor.DoctorCheck
