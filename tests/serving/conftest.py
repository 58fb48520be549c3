"""Fixtures for serving tests: a project with a registered classifier and a test client."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

import plinth
from plinth.context import Context

with warnings.catch_warnings():
    # starlette's TestClient warns once, on import, that it prefers httpx2 over httpx.
    warnings.simplefilter("ignore")
    import starlette.testclient  # noqa: F401


def train(seed: int = 0, flip: bool = False) -> tuple[Any, Any]:
    """A small logistic regression on (distance: float, hour: int) and its training frame."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"distance": rng.normal(size=120), "hour": rng.integers(0, 24, 120)})
    target = (frame["distance"] > 0).astype(int)
    if flip:
        target = 1 - target
    return LogisticRegression().fit(frame, target), frame


@pytest.fixture
def served_project(project: Context) -> Context:
    """A project with model ``m``: version 1 (alias champion) and version 2 (challenger)."""
    pytest.importorskip("sklearn")
    for flip in (False, True):
        model, frame = train(flip=flip)
        with plinth.start_run(experiment="serving") as run:
            run.log_model(model, name="m", input_example=frame.head())
    plinth.models.set_alias("m", "champion", 1)
    plinth.models.set_alias("m", "challenger", 2)
    return project
