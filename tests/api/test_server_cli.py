"""``plinth server`` and ``plinth ui`` from the command line: init prints the admin's token
once, management commands, bad input, and the Kubernetes export (no secret values)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")
httpx = pytest.importorskip("httpx")
import yaml  # noqa: E402

from plinth.api.bootstrap import open_accounts  # noqa: E402
from plinth.api.config import load_config  # noqa: E402
from plinth.cli.ui import local_app  # noqa: E402
from plinth.testing.server import free_socket  # noqa: E402

Cli = Callable[..., Any]
PASSWORD = "a long enough password"


@pytest.fixture
def root(tmp_path: Path, cli: Cli) -> tuple[Path, str]:
    """An initialised server root and its admin's token."""
    folder = tmp_path / "srv"
    result = cli("server", "init", "--root", str(folder), "--admin", "ada", "--json")
    assert result.code == 0, result.err
    return folder, json.loads(result.out)["token"]


def _run(cli: Cli, root: Path, *args: str) -> Any:
    result = cli("server", *args, "--root", str(root), "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_init_prints_the_admin_token_once_and_keeps_only_its_hash(tmp_path: Path, cli: Cli) -> None:
    folder = tmp_path / "srv"
    result = cli("server", "init", "--root", str(folder), "--admin", "ada")
    assert result.code == 0, result.err
    token = next(w for w in result.out.split() if w.startswith("plt_"))
    secret = token.split("_", 2)[2]
    for path in folder.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    accounts = open_accounts(load_config(folder))
    try:
        credential = accounts.check_token(token)
        assert credential is not None
        assert credential.server_admin
        assert credential.user == "ada"
    finally:
        accounts.close()
    listing = cli("server", "tokens", "list", "--root", str(folder))
    assert listing.code == 0
    assert secret not in listing.out
    assert (folder / "server.yaml").stat().st_mode & 0o077 == 0

    again = cli("server", "init", "--root", str(folder), "--admin", "bob")
    assert again.code == 2
    assert "already initialised" in again.err


def test_init_refuses_bad_input(tmp_path: Path, cli: Cli) -> None:
    cases = [
        (["--metadata", "postgresql+psycopg://u:hunter2@db/plinth"], "password"),
        (["--metadata", "mysql://db/x"], "PostgreSQL"),
        (["--artifacts", "relative/folder"], "artifacts"),
    ]
    for extra, words in cases:
        result = cli("server", "init", "--root", str(tmp_path / "s"), "--admin", "ada", *extra)
        assert result.code == 2, extra
        assert words in result.err
        assert "hunter2" not in result.err
        assert not (tmp_path / "s" / "server.yaml").exists()
    result = cli("server", "init", "--root", str(tmp_path / "s"), "--admin", "../x")
    assert result.code == 2
    assert "invalid user name" in result.err


def test_users_projects_and_tokens_are_managed_and_audited(
    root: tuple[Path, str], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = root
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert _run(cli, folder, "users", "add", "bob", "--password-stdin")["has_password"]
    assert [u["name"] for u in _run(cli, folder, "users", "list")] == ["ada", "bob"]
    assert _run(cli, folder, "projects", "create", "flights") == {"project": "flights"}
    assert (folder / "projects" / "flights" / "plinth.db").is_file()
    _run(cli, folder, "projects", "grant", "flights", "bob", "write")
    assert _run(cli, folder, "projects", "list") == [
        {"name": "flights", "members": {"bob": "write"}}
    ]
    created = _run(
        cli,
        folder,
        "tokens",
        "create",
        "--user",
        "bob",
        "--project",
        "flights",
        "--expires",
        "30d",
        "--scope",
        "gate",
    )
    assert created["projects"] == ["flights"]
    assert created["scopes"] == ["gate"]
    assert created["expires_at"] - created["created_at"] == 30 * 86400 * 1000
    listed = {t["id"]: t for t in _run(cli, folder, "tokens", "list", "--user", "bob")}
    assert "token" not in listed[created["id"]]
    _run(cli, folder, "tokens", "revoke", created["id"])
    _run(cli, folder, "users", "disable", "bob")
    assert _run(cli, folder, "users", "list")[1]["disabled"] is True
    monkeypatch.setattr("sys.stdin", io.StringIO("another long password\n"))
    _run(cli, folder, "users", "passwd", "bob", "--password-stdin")
    _run(cli, folder, "projects", "revoke", "flights", "bob")

    accounts = open_accounts(load_config(folder))
    try:
        assert accounts.check_token(created["token"]) is None
        assert accounts.members("flights") == []
    finally:
        accounts.close()
    actions = [e["action"] for e in _run(cli, folder, "audit", "--limit", "100")]
    for action in (
        "user.add",
        "project.create",
        "member.grant",
        "token.create",
        "token.revoke",
        "user.disable",
        "user.passwd",
        "member.revoke",
    ):
        assert action in actions
    assert [e["action"] for e in _run(cli, folder, "audit", "--project", "flights")] == [
        "member.revoke",
        "member.grant",
        "project.create",
    ]


def test_management_commands_refuse_bad_input(root: tuple[Path, str], cli: Cli) -> None:
    folder, _ = root
    bad = [
        ("projects", "create", "Bad Name"),
        ("projects", "grant", "nope", "ada", "read"),
        ("projects", "grant", "nope", "ada", "owner"),
        ("tokens", "create", "--user", "ada", "--expires", "3 weeks"),
        ("tokens", "create", "--user", "nobody"),
        ("tokens", "revoke", "0000000000000000"),
        ("users", "disable", "nobody"),
    ]
    for args in bad:
        result = cli("server", *args, "--root", str(folder))
        assert result.code == 2, args
    missing = cli("server", "users", "list", "--root", str(folder / "nothing"))
    assert missing.code == 2
    assert "plinth server init" in missing.err


def test_export_writes_two_replicas_with_probes_and_secret_references(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value-1234")
    monkeypatch.setenv("PGPASSWORD", "pg-secret-value-5678")
    folder = tmp_path / "srv"
    folder.mkdir()
    (folder / "server.yaml").write_text(
        "metadata: postgresql+psycopg://plinth@db:5432/plinth\n"
        "artifacts: s3://team-bucket/plinth\ns3_endpoint: https://s3.example.com\n"
    )
    out = tmp_path / "k8s"
    result = cli(
        "server",
        "export",
        "--target",
        "kubernetes",
        "--out",
        str(out),
        "--root",
        str(folder),
        "--registry",
        "ghcr.io/acme",
    )
    assert result.code == 0, result.err
    docs = {p.name: yaml.safe_load(p.read_text()) for p in out.glob("*.yaml")}
    deployment = docs["deployment.yaml"]
    assert deployment["kind"] == "Deployment"
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("ghcr.io/acme/plinth:")
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert set(refs) == {"PLINTH_SERVER_METADATA", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert docs["service.yaml"]["kind"] == "Service"
    config = yaml.safe_load(docs["configmap.yaml"]["data"]["server.yaml"])
    assert config["tls"] is True
    assert "metadata" not in config
    everything = "".join(p.read_text() for p in out.iterdir())
    assert "aws-secret-value-1234" not in everything
    assert "pg-secret-value-5678" not in everything

    (folder / "server.yaml").write_text("tls: false\n")  # SQLite under the root
    result = cli(
        "server",
        "export",
        "--target",
        "kubernetes",
        "--out",
        str(tmp_path / "x"),
        "--root",
        str(folder),
    )
    assert result.code == 2
    assert "replicas need shared state" in result.err


def test_plinth_ui_logs_in_once_through_its_link(project: Any) -> None:
    import threading

    import uvicorn

    app, login_path = local_app(project.settings)
    sock = free_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.02)
        with httpx.Client(base_url=url) as browser:
            assert browser.get("/api/v1/me").status_code == 401
            first = browser.get(login_path)
            assert first.status_code == 303
            assert "plinth_session" in browser.cookies
            me = browser.get("/api/v1/me").json()
            assert me["user"] == project.settings.user_name
            assert me["via"] == "local"
            assert me["roles"] == {"proj": "admin"}
        with httpx.Client(base_url=url) as other:
            assert other.get(login_path).status_code == 403, "the link works once"
            assert "plinth_session" not in other.cookies
    finally:
        server.should_exit = True
        thread.join(10)


def test_audit_shows_what_clients_sent_without_steering_the_terminal(
    root: tuple[Path, str], cli: Cli
) -> None:
    folder, _ = root
    accounts = open_accounts(load_config(folder))
    try:  # what a failed login records: the user name the client typed
        accounts.audit(
            user=None, project=None, action="login", target="x\x1b]0;pwned\x07", status="denied"
        )
    finally:
        accounts.close()
    result = cli("server", "audit", "--root", str(folder))
    assert result.code == 0
    assert "\x1b" not in result.out
    assert "\x07" not in result.out
    assert "pwned" in result.out
