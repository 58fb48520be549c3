"""STYLE.md: a module past ~600 lines is a signal to split. Held here for the packages that
were split by concept (serving: routes.py beside app.py; pipelines: rollout_judge.py,
monitor_alerts.py), so that they do not grow back into one module."""

from __future__ import annotations

from pathlib import Path

import pytest

import plinth

PACKAGE = Path(plinth.__file__).parent
LIMIT = 600


@pytest.mark.parametrize("package", ["serving", "pipelines"])
def test_no_module_of_the_package_is_past_the_limit(package: str) -> None:
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in sorted((PACKAGE / package).rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > LIMIT
    }
    assert long == {}, f"split these by concept (STYLE.md): {long}"
