from __future__ import annotations

import builtins
import inspect
import re
from pathlib import Path

import pytest

from plinth import errors
from plinth.errors import PlinthError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "errors.md"

ALL_ERRORS = [
    obj
    for _, obj in inspect.getmembers(errors, inspect.isclass)
    if issubclass(obj, Exception) and obj.__module__ == "plinth.errors"
]


def test_every_error_descends_from_the_root_and_is_drawn_in_the_docstring() -> None:
    assert errors.__doc__ is not None
    for cls in ALL_ERRORS:
        assert issubclass(cls, PlinthError)
        assert cls.__name__ in errors.__doc__, cls.__name__
        assert cls.__name__ in errors.__all__


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_every_error_has_exit_code_and_status(cls: type[PlinthError]) -> None:
    assert cls.exit_code in (1, 2)
    assert 400 <= cls.status <= 599


def test_usage_errors_exit_2_and_failed_checks_exit_1() -> None:
    assert errors.ConfigError("x").exit_code == 2
    assert errors.UsageError("x").exit_code == 2
    assert errors.CheckFailedError("x").exit_code == 1
    assert errors.BlobCorruptedError("ab" * 32, "/tmp/x").exit_code == 1


def test_one_line_and_json_shape() -> None:
    err = errors.ConfigError("bad thing in plinth.yaml.", hint="do this", field="metadata")
    assert err.one_line() == "bad thing in plinth.yaml (do this)"
    assert err.to_dict() == {
        "errors": [
            {"type": "ConfigError", "field": "metadata", "message": err.message, "hint": "do this"}
        ]
    }


def test_missing_extra_names_the_install_command() -> None:
    err = errors.MissingExtraError("artifacts=s3://b/p", "s3", field="artifacts")
    assert "pip install 'plinth[s3]'" in err.hint
    assert err.exit_code == 2


_TREE_LINE = re.compile(
    r"^(?P<indent>[ │]*)[├└]── (?P<name>\w+)\s.*\((?P<exit>\d), (?P<status>\d{3})\)\s*$"
)


def _drawn_tree(text: str) -> dict[str, tuple[str, int, int]]:
    """``name -> (parent, exit code, status)`` as the first drawing of the tree in ``text``
    shows them."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "PlinthError")
    base = lines[start].index("PlinthError")
    parents = ["PlinthError"]
    drawn: dict[str, tuple[str, int, int]] = {}
    for line in lines[start + 1 :]:
        match = _TREE_LINE.match(line)
        if match is None:
            break
        depth = (len(match["indent"]) - base) // 4
        parents[depth + 1 :] = [match["name"]]
        drawn[match["name"]] = (parents[depth], int(match["exit"]), int(match["status"]))
    return drawn


def _the_tree() -> dict[str, tuple[str, int, int]]:
    classes = [getattr(errors, name) for name in errors.__all__]
    return {
        cls.__name__: (cls.__bases__[0].__name__, cls.exit_code, cls.status)
        for cls in classes
        if isinstance(cls, type) and cls is not PlinthError
    }


@pytest.mark.parametrize("where", ["docs/errors.md", "the errors module docstring"])
def test_the_drawn_tree_is_the_error_tree(where: str) -> None:
    text = DOCS.read_text() if where == "docs/errors.md" else (errors.__doc__ or "")
    drawn, tree = _drawn_tree(text), _the_tree()
    assert sorted(set(tree) - set(drawn)) == [], f"{where} misses these errors"
    assert sorted(set(drawn) - set(tree)) == [], f"{where} shows errors the code lacks"
    for name, (parent, exit_code, status) in tree.items():
        assert drawn[name] == (parent, exit_code, status), f"{where} draws {name} wrongly"


def test_every_error_name_in_the_docs_exists() -> None:
    named = set(re.findall(r"\b[A-Z]\w*Error\b", DOCS.read_text()))
    unknown = [n for n in sorted(named) if n not in errors.__all__ and not hasattr(builtins, n)]
    assert unknown == []


def test_http_error_answers_a_plinth_error_with_its_status_and_json_shape() -> None:
    err = errors.NotFoundError("no run 0190abc", hint="see plinth runs list", field="run")
    assert errors.http_error(err) == (404, err.to_dict())


def test_request_error_lists_every_problem_in_order() -> None:
    err = errors.RequestError.naming([("records[0].hour", "missing"), ("body", "too short")])
    status, body = errors.http_error(err)
    assert status == 422
    assert body["errors"] == [
        {"type": "RequestError", "field": f, "message": m, "hint": err.hint}
        for f, m in [("records[0].hour", "missing"), ("body", "too short")]
    ]
    assert err.field == "records[0].hour"
    assert err.one_line().startswith("records[0].hour: missing (and 1 more)")
    too_large = errors.PayloadTooLargeError.naming([("records", "4 rows is more than 3")])
    assert errors.http_error(too_large)[0] == 413
    assert isinstance(too_large, errors.RequestError)


def test_unexpected_exception_is_a_500_that_does_not_echo_its_message() -> None:
    status, body = errors.http_error(KeyError("postgresql://u:s3cret@db"))
    assert status == 500
    assert "s3cret" not in str(body)
    assert body == {
        "errors": [
            {
                "type": "KeyError",
                "field": None,
                "message": "internal error: KeyError",
                "hint": "the server's log has the traceback",
            }
        ]
    }
