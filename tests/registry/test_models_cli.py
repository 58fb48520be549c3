"""``plinth models``: list, show, alias (with --expect), rollback, history and card."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from plinth.context import Context
from plinth.entities import ModelVersion

# Against a team server, moving the protected alias 'champion' takes a project admin.
pytestmark = pytest.mark.remote_token(role="admin")


def _digest(n: int) -> str:
    return f"{n:064x}"


@pytest.fixture
def three(project: Context) -> list[ModelVersion]:
    """Model ``delays`` with versions 1 to 3 (fake manifests; no files behind them)."""
    model = project.ledger.models.ensure(project.project.id, "delays")
    return [
        project.ledger.models.register(
            model, flavor="sklearn", manifest_digest=_digest(n), metrics={"rmse": 1.0 / n}
        )
        for n in (1, 2, 3)
    ]


def test_list_and_show(cli: Callable[..., Any], three: list[ModelVersion]) -> None:
    assert cli("models", "alias", "delays", "champion", "2").code == 0
    listed = cli("models", "list")
    assert listed.code == 0
    assert "delays" in listed.out
    assert "champion=v2" in listed.out
    [row] = json.loads(cli("models", "list", "--json").out)
    assert (row["name"], row["versions"], row["aliases"]) == ("delays", 3, {"champion": 2})
    shown = json.loads(cli("models", "show", "delays", "--json").out)
    assert [v["version"] for v in shown["versions"]] == [3, 2, 1]
    one = json.loads(cli("models", "show", "delays@champion", "--json").out)
    assert (one["ref"], one["aliases"], one["metrics"]) == ("delays@2", ["champion"], {"rmse": 0.5})
    text = cli("models", "show", "delays@champion").out
    assert "delays@2" in text
    assert "rmse = 0.5" in text


def test_alias_with_expect_is_a_compare_and_swap(
    cli: Callable[..., Any], three: list[ModelVersion]
) -> None:
    first = cli("models", "alias", "delays", "champion", "1", "--expect", "none", "--json")
    assert first.code == 0
    assert json.loads(first.out)["to"] == 1
    moved = cli("models", "alias", "delays", "champion", "3", "--expect", "1", "--reason", "rmse")
    assert moved.code == 0
    assert "v1 -> v3" in moved.out
    stale = cli("models", "alias", "delays", "champion", "2", "--expect", "1", "--json")
    assert stale.code == 2
    assert "points at version 3; expected it at version 1" in stale.err
    assert json.loads(stale.out)["errors"][0]["type"] == "ConflictError"
    assert json.loads(cli("models", "show", "delays@champion", "--json").out)["version"] == 3
    history = json.loads(cli("models", "history", "delays", "--json").out)
    assert [(m["from"], m["to"], m["reason"]) for m in history] == [(1, 3, "rmse"), (None, 1, None)]


def test_rollback_and_history(cli: Callable[..., Any], three: list[ModelVersion]) -> None:
    cli("models", "alias", "delays", "champion", "1")
    cli("models", "alias", "delays", "champion", "2")
    back = cli("models", "rollback", "delays", "champion", "--reason", "latency", "--json")
    assert back.code == 0
    assert (json.loads(back.out)["from"], json.loads(back.out)["to"]) == (2, 1)
    text = cli("models", "history", "delays", "--alias", "champion").out
    assert "latency" in text
    assert len(text.strip().splitlines()) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("alias", "delays", "latest", "1"), "invalid alias 'latest'"),
        (("alias", "delays", "champion", "9"), "has no version 9"),
        (("alias", "delays", "champion", "1", "--expect", "x"), "--expect 'x' is not a version"),
        (("show", "nope"), "no model named 'nope'"),
        (("show", "delays@"), "names no version after '@'"),
        (("rollback", "delays", "champion"), "has no alias 'champion'"),
        (("card", "delays@7"), "has no version 7"),
    ],
)
def test_bad_input_exits_2_with_what_to_fix(
    cli: Callable[..., Any], three: list[ModelVersion], args: tuple[str, ...], message: str
) -> None:
    result = cli("models", *args)
    assert result.code == 2
    assert message in result.err


def test_card(cli: Callable[..., Any], three: list[ModelVersion]) -> None:
    card = json.loads(cli("models", "card", "delays@3", "--json").out)
    assert (card["ref"], card["metrics"], card["run"], card["data"]) == (
        "delays@3",
        {"rmse": pytest.approx(1 / 3)},
        None,
        [],
    )
    text = cli("models", "card", "delays@3").out
    assert "# delays@3" in text
    assert "rmse" in text


@pytest.mark.parametrize("command", ["list", "show", "alias", "rollback", "history", "card"])
def test_every_command_has_help_with_an_example(cli: Callable[..., Any], command: str) -> None:
    result = cli("models", command, "--help")
    assert result.code == 0
    assert "plinth models" in result.out
    assert "--json" in result.out
