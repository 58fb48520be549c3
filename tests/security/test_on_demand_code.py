"""Code execution from on-demand feature views recorded in the ledger.

The attacker can write the shared ledger (an on-demand view's recorded ``function`` and
``code_digest``) or a file of the project; the victim is a teammate who reads features.
A recorded function runs only with ``trust_code=True``, only from a file inside the
project, and only while its source has the digest recorded at apply; every case asserts the
refusal and that the attacker's code did not run (no marker file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from plinth.context import Context
from plinth.errors import InvalidPathError, UsageError
from plinth.features.definitions import OnDemandFeatureView, from_spec
from plinth.features.on_demand import digest_ref, load_function

PAYLOAD = """
import pathlib
pathlib.Path({marker!r}).write_text("ran at import")


def fn(df):
    pathlib.Path({marker!r}).write_text("ran")
    return df
"""


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """Where the attacker's code writes if it runs (outside the project)."""
    return tmp_path / "pwned"


def _record(ctx: Context, ref: str, digest: str | None) -> OnDemandFeatureView:
    """An on-demand view as a teammate's ledger holds it, read back as resolving does."""
    spec: dict[str, Any] = {
        "sources": [],
        "request": {"x": "float64"},
        "features": {"x": "float64"},
        "function": ref,
        "code_digest": digest,
        "description": "",
    }
    rec = ctx.ledger.features.save_definition(ctx.project.id, "on_demand_view", "v", "a" * 64, spec)
    view = from_spec("on_demand_view", rec.name, rec.spec)
    assert isinstance(view, OnDemandFeatureView)
    return view


def test_recorded_function_does_not_run_without_trust_code(project: Context, marker: Path) -> None:
    (project.settings.root / "feats.py").write_text(PAYLOAD.format(marker=str(marker)))
    digest = digest_ref("feats.py:fn", root=project.settings.root, view="v")
    view = _record(project, "feats.py:fn", digest)
    with pytest.raises(UsageError) as err:
        load_function(view, ctx=project)
    assert err.value.field == "function"
    assert "--trust-code" in str(err.value.hint)
    assert not marker.exists()
    # The owner opting in runs it: the refusal above was the trust check, nothing else.
    load_function(view, ctx=project, trust_code=True)
    assert marker.exists()


@pytest.mark.parametrize("ref", ["../outside.py:fn", "sub/../../outside.py:fn", "link.py:fn"])
def test_recorded_path_outside_the_project_is_refused(
    project: Context, marker: Path, ref: str
) -> None:
    outside = project.settings.root.parent / "outside.py"
    outside.write_text(PAYLOAD.format(marker=str(marker)))
    os.symlink(outside, project.settings.root / "link.py")
    (project.settings.root / "sub").mkdir()
    digest = digest_ref("outside.py:fn", root=project.settings.root.parent, view="v")
    view = _record(project, ref, digest)
    with pytest.raises(InvalidPathError):
        load_function(view, ctx=project, trust_code=True)
    assert not marker.exists()


def test_changed_function_is_refused_before_its_file_runs(project: Context, marker: Path) -> None:
    path = project.settings.root / "feats.py"
    path.write_text("def fn(df):\n    return df\n")
    digest = digest_ref("feats.py:fn", root=project.settings.root, view="v")
    view = _record(project, "feats.py:fn", digest)
    # After apply, someone swaps the body (and the module) for a payload.
    path.write_text(PAYLOAD.format(marker=str(marker)))
    with pytest.raises(UsageError, match="changed since it was applied") as err:
        load_function(view, ctx=project, trust_code=True)
    assert err.value.field == "function"
    assert not marker.exists()


def test_recorded_digest_is_required(project: Context, marker: Path) -> None:
    (project.settings.root / "feats.py").write_text(PAYLOAD.format(marker=str(marker)))
    view = _record(project, "feats.py:fn", None)
    with pytest.raises(UsageError, match="without a digest"):
        load_function(view, ctx=project, trust_code=True)
    assert not marker.exists()
