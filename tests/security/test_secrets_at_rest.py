"""Secrets at rest: a run's command line and params are redacted before they reach the ledger.

Each case starts a real run (``plinth.start_run`` with ``sys.argv`` set as a training script
would have it), reads it back with ``plinth runs show --json``, and searches every file under
``.plinth`` (ledger, journal, blobs) for the secret's bytes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import pytest

import plinth
from plinth.context import Context
from plinth.guards.secrets import REDACTED, redact_argv, scrub_environment


def _stored_run(
    cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    params: dict[str, object] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    monkeypatch.setattr(sys, "argv", argv)
    with plinth.start_run(params=params, **kwargs) as run:
        run.flush()
    result = cli("runs", "show", run.id, "--json")
    assert result.code == 0, result.err
    shown: dict[str, Any] = json.loads(result.out)
    return shown


def _nowhere_at_rest(project: Context, secret: str) -> None:
    """The secret is in no file of the project's ledger, journal or blob store."""
    project.close()
    for path in (project.settings.root / ".plinth").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_url_password_on_the_command_line_is_redacted_before_it_is_stored(
    project: Context, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = _stored_run(
        cli, monkeypatch, ["train.py", "--db", "postgresql://etl:hunter2pw@db.example:5432/x"]
    )
    assert shown["source"]["argv"] == ["train.py", "--db", "postgresql://etl:***@db.example:5432/x"]
    assert shown["source"]["entry_point"]["args"][-1] == "postgresql://etl:***@db.example:5432/x"
    _nowhere_at_rest(project, "hunter2pw")


@pytest.mark.parametrize(
    "flag",
    ["--password", "--token", "--api-key", "--apikey", "--secret", "--access-key",
     "--private-key", "--db-password", "--hf_token", "--clientSecret"],
)  # fmt: skip
def test_secret_flag_with_equals_value_is_redacted_before_it_is_stored(
    project: Context, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    shown = _stored_run(cli, monkeypatch, ["train.py", f"{flag}=tok-ab12cd34", "--lr=0.1"])
    assert shown["source"]["argv"] == ["train.py", f"{flag}={REDACTED}", "--lr=0.1"]
    _nowhere_at_rest(project, "tok-ab12cd34")


@pytest.mark.parametrize("flag", ["--password", "--token", "--api-key", "--secret-key"])
def test_value_after_a_secret_flag_is_redacted_before_it_is_stored(
    project: Context, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    shown = _stored_run(cli, monkeypatch, ["train.py", flag, "tok-ab12cd34", "--epochs", "3"])
    assert shown["source"]["argv"] == ["train.py", flag, REDACTED, "--epochs", "3"]
    _nowhere_at_rest(project, "tok-ab12cd34")


def test_value_of_a_secret_environment_variable_is_redacted_wherever_it_appears(
    project: Context, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEATHER_SERVICE_TOKEN", "wx-7f3a9c")
    monkeypatch.setenv("LEDGER_PASSWORD", "short")  # under 6 characters: not searched for
    shown = _stored_run(
        cli,
        monkeypatch,
        ["train.py", "--header", "Bearer wx-7f3a9c", "--user", "short"],
        params={"auth_header": "Bearer wx-7f3a9c", "region": "eu"},
    )
    assert shown["source"]["argv"] == ["train.py", "--header", "Bearer ***", "--user", "short"]
    assert shown["params"] == {"auth_header": "Bearer ***", "region": "eu"}
    _nowhere_at_rest(project, "wx-7f3a9c")


def test_param_whose_key_looks_like_a_secret_is_redacted_before_it_is_stored(
    project: Context, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py"])
    with plinth.start_run(params={"password": "pw-0a1b2c", "api_key": "ak-0a1b2c"}) as run:
        run.log_param("token", "tk-0a1b2c")
        run.log_params({"clientSecret": "cs-0a1b2c", "max_tokens": 256, "lr": 0.1})
    shown = json.loads(cli("runs", "show", run.id, "--json").out)
    assert shown["params"] == {
        "password": REDACTED,
        "api_key": REDACTED,
        "token": REDACTED,
        "clientSecret": REDACTED,
        "max_tokens": "256",
        "lr": "0.1",
    }
    for secret in ("pw-0a1b2c", "ak-0a1b2c", "tk-0a1b2c", "cs-0a1b2c"):
        _nowhere_at_rest(project, secret)


def test_url_password_in_a_param_value_is_redacted_before_it_is_stored(
    project: Context, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = _stored_run(
        cli, monkeypatch, ["train.py"], params={"source": "s3://AKIA:sk-9z8y7x@minio:9000/raw"}
    )
    assert shown["params"] == {"source": "s3://AKIA:***@minio:9000/raw"}
    _nowhere_at_rest(project, "sk-9z8y7x")


def test_entry_point_given_to_start_run_is_redacted_like_a_detected_one(
    project: Context, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["--token", "tok-ab12cd34", "--seed", "1"]
    entry: dict[str, Any] = {"kind": "module", "module": "pkg.train", "module_root": "src"}
    entry["args"] = args
    shown = _stored_run(cli, monkeypatch, ["train.py"], entry_point=entry)
    assert shown["source"]["entry_point"]["args"] == ["--token", REDACTED, "--seed", "1"]
    _nowhere_at_rest(project, "tok-ab12cd34")


def test_command_line_without_a_secret_is_stored_unchanged_so_it_reruns(
    project: Context, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["train.py", "--max-tokens", "512", "--key", "label", "--data=s3://bucket/x", "a=b"]
    shown = _stored_run(cli, monkeypatch, argv, params={"sort_key": "ts", "tokenizer": "bpe"})
    assert shown["source"]["argv"] == argv
    assert shown["params"] == {"sort_key": "ts", "tokenizer": "bpe"}


def test_rerun_environment_is_scrubbed_of_every_credential_pattern() -> None:
    env = {
        "PGPASSWORD": "x",
        "PGHOST": "db",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_SESSION_TOKEN": "x",
        "GITHUB_TOKEN": "x",
        "DB_PASSWORD": "x",
        "CLIENT_SECRET_VALUE": "x",
        "STRIPE_KEY": "x",
        "PLINTH_METADATA": "postgresql://u@h/db",
        "PLINTH_ONLINE_STORE": "redis://:pw@h",
        "DATABASE_URL": "postgresql://u:pw@h/db",
        "PATH": "/usr/bin",
        "PWD": "/home/ada",
        "HOME": "/home/ada",
        "TOKENIZERS_PARALLELISM": "false",
        "PLINTH_SYSTEM_METRICS": "false",
    }
    kept, dropped = scrub_environment(env, pass_env=["GITHUB_TOKEN"])
    assert set(kept) == {
        "GITHUB_TOKEN",
        "PATH",
        "PWD",
        "HOME",
        "TOKENIZERS_PARALLELISM",
        "PLINTH_SYSTEM_METRICS",
    }
    assert set(dropped) == set(env) - set(kept)


def test_a_secret_in_an_argument_is_redacted_whatever_its_neighbours() -> None:
    out = redact_argv(
        ["x", "--token", "--verbose", "--password=", "--db=mysql://u:p4ss@h/d?password=zz"],
        env={},
    )
    assert out == [
        "x",
        "--token",
        "--verbose",
        "--password=***",
        "--db=mysql://u:***@h/d?password=***",
    ]
