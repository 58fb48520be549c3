from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
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
    assert statuses["online_store"] == statuses["executor"] == (None, "not used yet")


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
    for word in ("metadata", "artifacts", "online_store", "ok", "not used yet", "feature store"):
        assert word in r.out
    assert "FAIL" not in r.out


@pytest.fixture
def silent_port() -> Iterator[socket.socket]:
    """A listening local port; a connection to it waits in the backlog until accepted."""
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    yield server
    server.close()


def _accepted_any(server: socket.socket) -> bool:
    try:
        conn, _ = server.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def test_doctor_reports_unreachable_postgres_and_never_connects_to_the_unused_online_store(
    project_dir: Path, cli: Callable, monkeypatch: pytest.MonkeyPatch, silent_port: socket.socket
) -> None:
    assert cli("init").code == 0
    port = silent_port.getsockname()[1]
    monkeypatch.setenv("PLINTH_METADATA", "postgresql+psycopg://root:s3cretMARK@127.0.0.1:1/x")
    monkeypatch.setenv("PLINTH_ONLINE_STORE", f"redis://:s3cretMARK@127.0.0.1:{port}/0")
    monkeypatch.setenv("PLINTH_CONNECT_TIMEOUT", "2")
    r = cli("doctor", "--json")
    assert r.code == 1
    checks = {c["name"]: c for c in json.loads(r.out)["checks"]}
    assert not checks["metadata"]["ok"]
    assert checks["online_store"]["status"] == "not used yet"
    assert checks["online_store"]["target"] == f"redis://:***@127.0.0.1:{port}/0"
    assert checks["artifacts"]["ok"]
    assert "s3cretMARK" not in r.out + r.err
    assert not _accepted_any(silent_port), "doctor connected to a store nothing uses"


def test_doctor_passes_with_executor_and_online_store_set_to_backends_not_installed(
    project_dir: Path, cli: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, ray:// without the ray extra exited 2 and an unknown scheme failed the check."""
    assert cli("init").code == 0
    monkeypatch.setenv("PLINTH_EXECUTOR", "ray://127.0.0.1:10001")
    monkeypatch.setenv("PLINTH_ONLINE_STORE", "memcached://cache:11211")
    r = cli("doctor", "--json")
    assert r.code == 0, r.out + r.err
    checks = {c["name"]: c for c in json.loads(r.out)["checks"]}
    assert checks["executor"]["target"] == "ray://127.0.0.1:10001"
    assert "pipelines" in checks["executor"]["detail"]
    assert checks["online_store"]["status"] == checks["executor"]["status"] == "not used yet"


def test_doctor_rows_are_doctor_checks_and_the_old_name_check_warns(project_dir: Path) -> None:
    from plinth import doctor
    from plinth.settings import load_settings

    rows = doctor.run_checks(load_settings(project_dir))
    assert [row.name for row in rows][:3] == ["config", "metadata", "artifacts"]
    assert all(isinstance(row, doctor.DoctorCheck) for row in rows)
    with pytest.deprecated_call(match="plinth.doctor.DoctorCheck"):
        old = doctor.Check
    assert old is doctor.DoctorCheck
