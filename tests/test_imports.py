"""`import plinth` and `plinth --help` stay light: no pandas, SQLAlchemy, pyarrow or boto3."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ["pandas", "sqlalchemy", "pyarrow", "boto3", "botocore", "numpy", "alembic", "rich"]

PROBE = """
import json, sys
{code}
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)))
"""


def _loaded(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code, heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return list(json.loads(out.strip().splitlines()[-1]))


def test_import_plinth_is_light() -> None:
    assert _loaded("import plinth") == []


def test_plinth_datasets_is_lazy_and_light() -> None:
    assert _loaded("import plinth\nassert callable(plinth.datasets.add)") == []


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["gc", "--help"],
        ["init", "--help"],
        ["runs", "list", "--help"],
        ["data", "--help"],
        ["data", "status", "--help"],
    ],
)
def test_cli_help_is_light(args: list[str]) -> None:
    code = f"from plinth.cli.main import main\nrc = main({args!r})\nassert rc == 0, rc"
    assert _loaded(code) == []
