"""The Python API over a live team server: PLINTH_SERVER + PLINTH_TOKEN, nothing else."""

from __future__ import annotations

import math
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import plinth
from plinth.context import Context, set_current
from plinth.entities import RecordRef
from plinth.errors import (
    ConfigError,
    ConflictError,
    LedgerUnavailableError,
    NotFoundError,
    UsageError,
)
from plinth.ledger.accounts import AccountStore
from plinth.ledger.remote import RemoteLedger
from plinth.storage.http_blobs import HttpBlobStore
from plinth.testing.server import ServerHandle, start_server

pytest.importorskip("starlette")

PROJECT = "flights"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_server(tmp_path_factory.mktemp("server"), token_limit=100_000)
    handle.create_project(PROJECT)
    yield handle
    handle.stop()


Connect = Callable[..., Context]


@pytest.fixture
def connect(
    server: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Connect]:
    """``connect(token)``: a project folder whose context talks to the server only."""
    opened: list[Context] = []

    def open_as(token: str, *, folder: str = "proj") -> Context:
        root = tmp_path / folder
        root.mkdir(exist_ok=True)
        monkeypatch.chdir(root)
        monkeypatch.setenv("PLINTH_SERVER", server.url)
        monkeypatch.setenv("PLINTH_TOKEN", token)
        monkeypatch.setenv("PLINTH_PROJECT", PROJECT)
        monkeypatch.setenv("PLINTH_USER", "mallory")  # a client's claim; never recorded
        # Opened now (the token is read when the ledger opens) and made current without
        # closing the others, as plinth.init would.
        ctx = Context.open(root, system_metrics=False)
        assert isinstance(ctx.ledger, RemoteLedger)
        set_current(ctx)
        opened.append(ctx)
        return ctx

    yield open_as
    from plinth.tracking.runs import active_run

    while (run := active_run()) is not None:
        run.end("finished")
    for ctx in opened:
        ctx.close()


def _audit(server: ServerHandle, user: str) -> list[tuple[str, str, object]]:
    accounts = AccountStore.open(server.config.accounts_url)
    try:
        entries = accounts.audit_log(project=PROJECT, user=user, limit=1000)
    finally:
        accounts.close()
    return [(e.action, e.target, e.detail) for e in entries]


def test_a_run_is_recorded_on_the_server_as_the_tokens_user(
    server: ServerHandle, connect: Connect, tmp_path: Path
) -> None:
    ctx = connect(server.token("ada", PROJECT, "write"))
    assert isinstance(ctx.ledger, RemoteLedger)
    assert isinstance(ctx.blobs.store, HttpBlobStore)
    (tmp_path / "notes.txt").write_text("hello")
    with plinth.start_run("exp", name="remote", params={"lr": 0.1}, tags={"team": "a"}) as run:
        for step in range(300):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metric("odd", math.nan, step=0)
        run.set_tag("stage", "dev")
        run.log_artifact(tmp_path / "notes.txt")
        run.log_text("x" * 10, "small/a.txt")
    got = ctx.ledger.runs.get_run(run.id)
    assert (got.status, got.created_by, got.name) == ("finished", "ada", "remote")
    assert ctx.ledger.runs.get_params(run.id)["lr"] == "0.1"
    assert ctx.ledger.runs.get_tags(run.id)["stage"] == "dev"
    history = ctx.ledger.runs.metric_history(run.id, "loss")
    assert [p.step for p in history] == list(range(300))
    assert math.isnan(ctx.ledger.runs.latest_metrics(run.id)["odd"])
    artifacts = {a.path: a for a in ctx.ledger.artifacts.list(RecordRef("run", run.id))}
    assert {"notes.txt", "small/a.txt"} <= set(artifacts)
    assert artifacts["notes.txt"].created_by == "ada"
    assert ctx.blobs.read_bytes(artifacts["notes.txt"].digest) == b"hello"
    # the blobs are in the server project's own store, not in this folder
    assert not (ctx.settings.data_dir / "artifacts").exists()
    assert not (ctx.settings.data_dir / "plinth.db").exists()
    # audited with the method and target, never the values (a param could be a secret)
    actions = _audit(server, "ada")
    assert any(a == "ledger.runs.create_run" for a, _, _ in actions)
    assert not any("0.1" in repr(detail) for _, _, detail in actions)
    assert ("ledger.runs.set_tags", run.id) in {(a, t) for a, t, _ in actions}


def test_errors_come_back_as_the_same_classes(server: ServerHandle, connect: Connect) -> None:
    ctx = connect(server.token("ada", PROJECT, "write"))
    with pytest.raises(NotFoundError, match="no run with id 'missing'"):
        ctx.ledger.runs.get_run("missing")
    model = ctx.ledger.models.ensure(ctx.project.id, "delays")
    ctx.ledger.models.register(model, flavor="sklearn", manifest_digest="1" * 64)
    ctx.ledger.models.set_alias(model, "staging", 1, expected=None)
    with pytest.raises(ConflictError):
        ctx.ledger.models.set_alias(model, "staging", 1, expected=None)


def test_a_read_only_token_cannot_write(server: ServerHandle, connect: Connect) -> None:
    writer = connect(server.token("ada", PROJECT, "write"))
    project_id = writer.project.id
    reader = connect(server.token("rita", PROJECT, "read"), folder="reader")
    assert reader.ledger.projects.get_project(PROJECT).id == project_id
    with pytest.raises(UsageError, match="'write' role") as info:
        reader.ledger.projects.ensure_experiment(project_id, "sneaky")
    assert info.value.exit_code == 2
    assert [e.name for e in reader.ledger.projects.list_experiments(project_id)].count(
        "sneaky"
    ) == 0


def test_protected_alias_needs_admin_or_a_gate_token(
    server: ServerHandle, connect: Connect
) -> None:
    writer = connect(server.token("ada", PROJECT, "write"))
    model = plinth.models  # the public API, as a user would call it
    ledger_model = writer.ledger.models.ensure(writer.project.id, "churn")
    for n in (1, 2):
        writer.ledger.models.register(ledger_model, flavor="sklearn", manifest_digest=f"{n}" * 64)
    model.set_alias("churn", "staging", 1)  # not protected: any writer
    with pytest.raises(UsageError, match="protected"):
        model.set_alias("churn", "champion", 1)
    assert "champion" not in writer.ledger.models.aliases(ledger_model)
    admin = connect(server.token("boss", PROJECT, "admin"), folder="admin")
    plinth.models.set_alias("churn", "champion", 1, ctx=admin)
    gate = connect(server.token("gatekeeper", PROJECT, "write", scopes=["gate"]), folder="gate")
    plinth.models.set_alias("churn", "champion", 2, ctx=gate)
    assert gate.ledger.models.aliases(ledger_model)["champion"] == 2
    with pytest.raises(UsageError, match="protected"):
        plinth.models.rollback("churn", "champion", ctx=writer)
    plinth.models.rollback("churn", "champion", reason="regression", ctx=admin)
    moves = admin.ledger.models.alias_history(ledger_model, "champion")
    assert [(m.to_number, m.created_by) for m in moves] == [
        (1, "boss"),
        (2, "gatekeeper"),
        (1, "boss"),
    ]
    audit = _audit(server, "gatekeeper")
    assert ("ledger.models.set_alias", "model:" + ledger_model.id) in {(a, t) for a, t, _ in audit}


def test_datasets_add_and_load_over_the_server(
    server: ServerHandle, connect: Connect, tmp_path: Path
) -> None:
    pd = pytest.importorskip("pandas")
    ctx = connect(server.token("ada", PROJECT, "write"))
    folder = tmp_path / "tree"
    folder.mkdir()
    for i in range(40):  # many small files: one batch request
        (folder / f"f{i:02d}.txt").write_text(f"file {i}\n")
    added = plinth.datasets.add(folder, "docs").version
    assert (added.number, added.file_count, added.created_by) == (1, 40, "ada")
    batches = [d for a, _, d in _audit(server, "ada") if a == "blob.batch"]
    assert {"count": 40} in batches  # the 40 files went in one request
    frame = pd.DataFrame({"x": [1.5, 2.5], "y": ["a", "b"]})
    frame.to_parquet(tmp_path / "t.parquet")
    plinth.datasets.add(tmp_path / "t.parquet", "table")
    loaded = plinth.datasets.load("table")
    assert loaded.to_dict("list") == frame.to_dict("list")
    out = tmp_path / "checkout"
    plinth.datasets.checkout("docs@1", out)
    assert (out / "f07.txt").read_text() == "file 7\n"
    assert ctx.ledger.datasets.tags(ctx.ledger.datasets.get(ctx.project.id, "docs")) == {}


def test_a_monitor_runs_against_the_server(
    server: ServerHandle, connect: Connect, tmp_path: Path
) -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    pytest.importorskip("sklearn")
    pytest.importorskip("skops")
    from sklearn.linear_model import LogisticRegression

    from plinth.ids import new_id, now_ms
    from plinth.monitoring.monitors import run_monitor
    from plinth.monitoring.spec import MonitorSpec
    from plinth.serving.predlog import PredictionLog

    ctx = connect(server.token("ada", PROJECT, "write"))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(0, 1, 500), "z": rng.normal(0, 1, 500)})
    frame.assign(y=(frame["x"] > 0).astype(int)).to_parquet(tmp_path / "train.parquet")
    plinth.datasets.add(tmp_path / "train.parquet", "train")
    with plinth.start_run() as run:
        data = plinth.datasets.load("train")
        model = LogisticRegression().fit(data[["x", "z"]], data["y"])
        run.log_model(model, name="mon", input_example=data[["x", "z"]].head())
    digest = ctx.blobs.put_bytes(b"name: web\nmodel: mon@1\n").digest
    deployment = ctx.ledger.deployments.save(
        ctx.project.id, "web", digest, {"name": "web", "model": "mon@1"}
    )
    log = PredictionLog(ctx, deployment)
    shifted = rng.normal(2, 1, 300)
    for x in shifted:
        log.append(new_id(), now_ms(), "mon@1", {"x": [x], "z": [0.0]}, [float(x > 0)])
    assert log.flush() is not None
    spec_file = ctx.settings.root / "monitor.yaml"
    spec_file.write_text("deployment: web\nwindow: {rows: 300}\n", encoding="utf-8")
    outcome = run_monitor(MonitorSpec.load(spec_file), ctx=ctx)
    assert outcome.status == "alert"
    assert outcome.report.created_by == "ada"
    assert ctx.ledger.monitoring.reports(ctx.project.id, monitor="web") == [outcome.report]


def test_a_server_that_is_down_is_named(connect: Connect, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ledger = RemoteLedger(f"http://127.0.0.1:{port}", project=PROJECT, token="plt_x_y")
    with pytest.raises(LedgerUnavailableError, match=f"127.0.0.1:{port}") as info:
        ledger.runs.get_run("r")
    assert "plt_x_y" not in str(info.value)
    assert info.value.exit_code == 2


def test_the_token_never_comes_from_plinth_yaml(tmp_path: Path) -> None:
    (tmp_path / "plinth.yaml").write_text("server: http://127.0.0.1:1\ntoken: plt_a_b\n")
    with pytest.raises(ConfigError, match=r"never belongs in plinth\.yaml") as info:
        plinth.load_settings(tmp_path)
    assert "plt_a_b" not in str(info.value)


def test_the_cli_works_against_the_server(
    server: ServerHandle, connect: Connect, cli: Callable[..., Any]
) -> None:
    connect(server.token("ada", PROJECT, "write"))
    with plinth.start_run("cli", name="from-the-cli") as run:
        run.log_metric("acc", 0.75)
    listed = cli("runs", "list", "--json")
    assert listed.code == 0, listed.err
    assert "from-the-cli" in listed.out
    doctor = cli("doctor", "--json")
    assert doctor.code == 0, doctor.out
    assert server.url in doctor.out
    refused = cli("gc", "--dry-run")  # gc needs the project's admin role
    assert refused.code == 2
    assert "'admin' role" in refused.err
