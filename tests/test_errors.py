from __future__ import annotations

import inspect

import pytest

from plinth import errors
from plinth.errors import PlinthError

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
