"""Column policies (the ``pii`` setting): a run may load listed columns only hashed or
dropped; ``plinth.datasets.mask`` hashes them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import plinth
from plinth import datasets
from plinth.context import Context
from plinth.datasets.policy import is_masked
from plinth.entities import RecordRef
from plinth.errors import ConfigError, PolicyViolationError, UsageError
from plinth.settings import load_settings
from plinth.tracking.runs import active_run

USERS = pa.table(
    {
        "user_id": [1, 2, 3],
        "email": ["ann@example.com", "bob@example.com", None],
        "phone": ["+44 20 7946 0958", "+1 555 123 4567", "+33 6 12 34 56 78"],
        "country": ["UK", "US", "FR"],
    }
)


@pytest.fixture
def project(project_dir: Path) -> Iterator[Context]:
    # The folder's name is the project's (a team server's project in remote mode).
    policy = f"project: {project_dir.name}\npii:\n  users: [email, phone]\n"
    (project_dir / "plinth.yaml").write_text(policy)
    ctx = plinth.init(project_dir, system_metrics=False)
    yield ctx
    while (run := active_run()) is not None:
        run.end("finished")
    ctx.close()


def test_a_run_loading_plain_policy_columns_fails_naming_them(project: Context) -> None:
    datasets.save(USERS.select(["user_id", "email", "country"]), "users", "raw")
    with (
        plinth.start_run(experiment="e", system_metrics=False) as run,
        pytest.raises(PolicyViolationError) as caught,
    ):
        datasets.load("users")
    assert str(caught.value) == (
        "dataset 'users@1' column 'email' is listed under pii.users in plinth.yaml: drop it "
        "or hash it before training (plinth.datasets.mask(df, ['email']))"
    )
    assert caught.value.exit_code == 1
    assert caught.value.hint
    version = datasets.get("users@1")
    edges = project.ledger.lineage.edges_to(RecordRef(datasets.RECORD_TYPE, version.id))
    assert [e for e in edges if e.src == RecordRef("run", run.id)] == []


def test_every_plain_column_is_named(project: Context) -> None:
    datasets.save(USERS, "users", "raw")
    with (
        plinth.start_run(experiment="e", system_metrics=False),
        pytest.raises(PolicyViolationError, match="columns 'email', 'phone' are listed"),
    ):
        datasets.load("users", to="arrow")


def test_outside_a_run_and_for_other_datasets_load_works(project: Context) -> None:
    datasets.save(USERS, "users", "raw")
    datasets.save(USERS, "contacts", "same columns, no policy")
    assert datasets.load("users", to="arrow").equals(USERS)
    with plinth.start_run(experiment="e", system_metrics=False):
        assert datasets.load("contacts", to="arrow").num_rows == 3


def test_masked_and_dropped_columns_pass(project: Context) -> None:
    datasets.save(USERS, "users", "raw")
    raw = datasets.load("users")  # outside a run: plain
    masked = datasets.mask(raw.drop(columns=["phone"]), ["email"], salt="pepper")
    datasets.save(masked, "users", "emails hashed, phones dropped")
    with plinth.start_run(experiment="e", system_metrics=False):
        loaded = datasets.load("users@2")
        with pytest.raises(PolicyViolationError):
            datasets.load("users@1")
    assert list(loaded.columns) == ["user_id", "email", "country"]
    assert loaded["email"][0] == hashlib.sha256(b"pepperann@example.com").hexdigest()
    assert loaded["email"].isna().tolist() == [False, False, True]


def test_a_partly_hashed_column_is_still_plain(project: Context) -> None:
    hashed = datasets.mask(USERS, ["email", "phone"])
    mixed = hashed.set_column(1, "email", pa.array(["ann@example.com", *hashed["email"][1:]]))
    assert not is_masked(mixed.column("email"))
    datasets.save(mixed, "users")
    with (
        plinth.start_run(experiment="e", system_metrics=False),
        pytest.raises(PolicyViolationError, match="column 'email' is listed"),
    ):
        datasets.load("users")


def test_mask_keeps_the_kind_of_frame_and_is_deterministic() -> None:
    frame = USERS.to_pandas()
    out = datasets.mask(frame, ["email", "user_id"])
    assert isinstance(out, pd.DataFrame)
    assert out["user_id"].tolist() == [
        hashlib.sha256(str(n).encode()).hexdigest() for n in (1, 2, 3)
    ]
    assert out["country"].tolist() == ["UK", "US", "FR"]
    assert frame["email"][0] == "ann@example.com"  # the input is not changed
    again = datasets.mask(USERS, ["email"])
    assert isinstance(again, pa.Table)
    assert again.column("email").to_pylist() == [*out["email"].tolist()[:2], None]
    salted = datasets.mask(USERS, ["email"], salt="s")
    assert salted.column("email")[0] != again.column("email")[0]
    with pytest.raises(UsageError, match="cannot mask column 'mail'"):
        datasets.mask(USERS, ["mail"])


def test_the_setting_reads_yaml_and_json_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "plinth.yaml").write_text("pii:\n  users: [email]\n  orders: []\n")
    settings = load_settings(tmp_path, env={})
    assert settings.pii == {"users": ("email",), "orders": ()}
    settings = load_settings(tmp_path, env={"PLINTH_PII": '{"users": ["phone"]}'})
    assert (settings.pii, settings.sources["pii"]) == ({"users": ("phone",)}, "env")
    assert load_settings(tmp_path / "nowhere", env={}, discover=False).pii == {}
    for bad in ("users", '{"users": "email"}', "[1, 2]"):
        with pytest.raises(ConfigError, match="must map dataset names to lists of column"):
            load_settings(tmp_path, env={"PLINTH_PII": bad})
    (tmp_path / "plinth.yaml").write_text("pii: [email]\n")
    with pytest.raises(ConfigError, match=r"setting 'pii' in .*plinth\.yaml must map"):
        load_settings(tmp_path, env={})


def test_a_policy_from_the_environment_is_named_as_such(
    project: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets.save(USERS, "orders")
    monkeypatch.setenv("PLINTH_PII", '{"orders": ["country"]}')
    ctx = plinth.init(project.settings.root, system_metrics=False)
    try:
        with (
            plinth.start_run(experiment="e", system_metrics=False, ctx=ctx),
            pytest.raises(PolicyViolationError, match=r"under pii\.orders in PLINTH_PII"),
        ):
            datasets.load("orders")
    finally:
        ctx.close()
