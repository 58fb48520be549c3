"""The serving fast path: arrays instead of DataFrames where the model gives the same
answers, and model calls on the event loop's thread while they are quick."""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import pytest

from plinth.registry.flavors.base import PlinthModel
from plinth.registry.flavors.signature import infer_signature
from plinth.serving.batcher import Batcher, Item
from plinth.serving.metrics import ServingMetrics
from plinth.serving.served import ServedModel

pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")
np = pytest.importorskip("numpy")


def frame(n: int = 200, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"distance": rng.normal(size=n), "hour": rng.integers(0, 24, n)})


def served(model: Any, example: Any) -> ServedModel:
    wrapped = PlinthModel("sklearn", model, infer_signature(example.head()))
    return ServedModel(
        wrapped,
        "m@1",
        "primary",
        max_rows=1000,
        wait_s=0.0,
        arriving=lambda: 0,
        metrics=ServingMetrics("test"),
    )


def test_model_fitted_on_a_frame_is_served_from_arrays() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    data = frame()
    target = (data["distance"] > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=10).fit(data, target)
    s = served(model, data)
    assert s.as_frame is False
    columns = {"distance": data["distance"].tolist(), "hour": data["hour"].tolist()}
    with warnings.catch_warnings(record=True) as caught:
        got = s.predict_columns(columns)
    assert not [w for w in caught if "feature names" in str(w.message)]
    assert got == model.predict_proba(data)[:, 1].tolist()


def test_nulls_become_nan_on_the_array_path() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    data = frame()
    model = HistGradientBoostingClassifier(max_iter=5).fit(data, data["hour"] > 11)
    s = served(model, data)
    assert s.as_frame is False
    got = s.predict_columns({"distance": [None, 0.5], "hour": [3, 20]})
    expected = model.predict_proba(pd.DataFrame({"distance": [np.nan, 0.5], "hour": [3, 20]}))
    assert got == expected[:, 1].tolist()


def test_composite_models_keep_their_data_frame() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = frame()
    pipe = make_pipeline(
        ColumnTransformer([("scale", StandardScaler(), ["distance"])], remainder="passthrough"),
        LogisticRegression(),
    ).fit(data, data["distance"] > 0)
    s = served(pipe, data)
    assert s.as_frame is True
    got = s.predict_columns({"distance": [1.0, -1.0], "hour": [1, 2]})
    expected = pipe.predict_proba(pd.DataFrame({"distance": [1.0, -1.0], "hour": [1, 2]}))
    assert got == expected[:, 1].tolist()


def test_names_in_another_order_keep_the_data_frame() -> None:
    from sklearn.linear_model import LogisticRegression

    data = frame()
    model = LogisticRegression().fit(data[["hour", "distance"]], data["distance"] > 0)
    assert served(model, data).as_frame is True  # the signature says distance, hour


def _threads(delay: float) -> tuple[Batcher, list[str]]:
    seen: list[str] = []

    def predict(items: Sequence[Item]) -> list[list[Any]]:
        seen.append(threading.current_thread().name)
        if delay:
            import time

            time.sleep(delay)
        return [[r * 2 for r in item.columns["x"]] for item in items]

    return Batcher(predict, max_rows=100, wait_s=0.0, arriving=lambda: 0, inline_s=0.005), seen


def test_quick_model_calls_run_on_the_loop_thread() -> None:
    batcher, seen = _threads(0.0)

    async def go() -> list[list[Any]]:
        return [await batcher.submit({"x": [i]}, 1) for i in range(5)]

    try:
        assert asyncio.run(go()) == [[0], [2], [4], [6], [8]]
    finally:
        batcher.close()
    assert set(seen) == {threading.main_thread().name}
    assert batcher.call_s < 0.005


def test_slow_model_calls_move_to_the_worker_thread() -> None:
    batcher, seen = _threads(0.03)

    async def go() -> list[list[Any]]:
        return [await batcher.submit({"x": [i]}, 1) for i in range(4)]

    try:
        assert asyncio.run(go()) == [[0], [2], [4], [6]]
    finally:
        batcher.close()
    assert seen[0] == threading.main_thread().name  # nothing known yet: the first is inline
    assert all(name.startswith("plinth-model") for name in seen[1:])


def test_concurrent_requests_share_a_call_and_a_bad_one_fails_alone() -> None:
    calls: list[int] = []

    def predict(items: Sequence[Item]) -> list[list[Any]]:
        calls.append(len(items))
        if any(item.columns["x"] == ["bad"] for item in items):
            raise ValueError("bad row")
        return [list(item.columns["x"]) for item in items]

    batcher = Batcher(predict, max_rows=100, wait_s=0.0, arriving=lambda: 0)

    async def go() -> list[Any]:
        submitted = (batcher.submit({"x": [v]}, 1) for v in (1, "bad", 3, 4))
        return list(await asyncio.gather(*submitted, return_exceptions=True))

    try:
        got = asyncio.run(go())
    finally:
        batcher.close()
    assert [got[0], got[2], got[3]] == [[1], [3], [4]]
    assert isinstance(got[1], ValueError)
    assert max(calls) > 1  # batched, then retried one by one


def test_lineage_is_read_when_first_asked_for_not_at_load() -> None:
    """The lineage summary (a model card: run, environment, data) is not on the path from
    start to first prediction: it is read on the first GET /v1/model, once."""
    from sklearn.linear_model import LogisticRegression

    data = frame()
    model = LogisticRegression().fit(data, (data["distance"] > 0).astype(int))
    reads: list[int] = []

    def read() -> dict[str, Any]:
        reads.append(1)
        return {"run_id": "r1"}

    wrapped = PlinthModel("sklearn", model, infer_signature(data.head()))
    s = ServedModel(
        wrapped,
        "m@1",
        "primary",
        max_rows=1000,
        wait_s=0.0,
        arriving=lambda: 0,
        metrics=ServingMetrics("test"),
        lineage=read,
    )
    s.predict_columns({"distance": [0.1], "hour": [3]})
    assert reads == []
    assert s.describe()["lineage"] == {"run_id": "r1"}
    assert s.describe()["lineage"] == {"run_id": "r1"}
    assert reads == [1]
