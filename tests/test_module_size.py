"""STYLE.md: a module past ~600 lines is a signal to split by concept. Held for every module
of the package (serving/routes.py beside app.py, pipelines/rollout_judge.py, the ledger's
tables_features.py and tables_pipelines.py beside tables.py were split so), so that none
grows back into one module."""

from __future__ import annotations

from pathlib import Path

import plinth

PACKAGE = Path(plinth.__file__).parent
LIMIT = 600


def test_no_module_of_the_package_is_past_the_limit() -> None:
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in sorted(PACKAGE.rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > LIMIT
    }
    assert long == {}, f"split these by concept (STYLE.md): {long}"
