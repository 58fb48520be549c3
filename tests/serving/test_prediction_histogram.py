"""The prediction histogram follows the model's own outputs (issue 13, problem 3)."""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pytest

import plinth
from plinth.context import Context
from plinth.serving.metrics import (
    DEFAULT_VALUE_BUCKETS,
    PROBABILITY_BUCKETS,
    prediction_buckets,
)

_BUCKET = re.compile(
    r'^plinth_prediction_value_bucket\{deployment="(?P<d>[^"]*)",le="(?P<le>[^"]+)",'
    r'model_version="(?P<v>[^"]*)"\} (?P<n>\S+)$'
)


def _prices(n: int, seed: int) -> tuple[Any, Any]:
    """A price table: rooms and area in, a price of some hundreds to a few thousands out."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"rooms": rng.integers(1, 7, n), "area": rng.uniform(20, 200, n)})
    price = 150.0 * frame["rooms"] + 12.0 * frame["area"] + rng.normal(0, 80, n)
    return frame, price.to_numpy()


def _buckets(exposition: str, version: str) -> list[tuple[float, float]]:
    """(le, cumulative count) of one model version's prediction histogram."""
    out = []
    for line in exposition.splitlines():
        found = _BUCKET.match(line)
        if found and found["v"] == version:
            out.append((float(found["le"]), float(found["n"])))
    return sorted(out)


def _serve_and_scrape(project: Context, spec_yaml: str, frame: Any) -> str:
    from plinth.serving.app import create_app
    from plinth.serving.spec import DeploymentSpec

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient

    app = create_app(DeploymentSpec.from_yaml(spec_yaml), ctx=project, seed=0)
    with TestClient(app) as client:
        for start in range(0, len(frame), 50):
            records = frame.iloc[start : start + 50].to_dict(orient="records")
            answer = client.post("/v1/predict", json={"records": records})
            assert answer.status_code == 200, answer.text
        text: str = client.get("/metrics").text
    return text


@pytest.mark.parametrize("holdout", [True, False], ids=["holdout", "input-example-only"])
def test_regression_predictions_in_the_hundreds_to_thousands_rarely_land_in_inf(
    project: Context, holdout: bool
) -> None:
    from sklearn.linear_model import LinearRegression

    train, price = _prices(600, seed=1)
    model = LinearRegression().fit(train, price)
    with plinth.start_run(experiment="prices") as run:
        if holdout:
            run.log_predictions(price[:200], model.predict(train.head(200)))
        mv = run.log_model(model, name="price", input_example=train.head())
    stored = (mv.signature or {})["prediction_quantiles"]
    assert stored["source"] == ("predictions" if holdout else "input_example")
    assert stored["rows"] == (200 if holdout else 5)

    traffic, _ = _prices(307, seed=2)  # as many rows as the report
    exposition = _serve_and_scrape(project, "name: shop\nmodel: price@1\n", traffic)
    buckets = _buckets(exposition, "price@1")
    assert buckets, exposition
    total = buckets[-1][1]
    assert total == 307  # every prediction is counted, none sampled away
    finite = [(le, n) for le, n in buckets if le != float("inf")]
    in_inf = total - finite[-1][1]
    assert in_inf < 0.1 * total, buckets
    # the distribution is visible: predictions spread over several buckets
    counts = np.diff([0.0] + [n for _, n in finite])
    assert np.count_nonzero(counts) >= 4, buckets


def test_a_probability_model_gets_buckets_from_zero_to_one(project: Context) -> None:
    from sklearn.linear_model import LogisticRegression

    frame, price = _prices(200, seed=3)
    model = LogisticRegression(max_iter=500).fit(frame, price > np.median(price))
    with plinth.start_run(experiment="prices") as run:
        run.log_model(model, name="dear", input_example=frame.head())
    exposition = _serve_and_scrape(project, "name: dear\nmodel: dear@1\n", frame)
    edges = [le for le, _ in _buckets(exposition, "dear@1")]
    assert edges == [*PROBABILITY_BUCKETS, float("inf")]


def test_bucket_edges_follow_stored_quantiles_or_the_output_kind() -> None:
    deciles = np.quantile(np.linspace(180.0, 3200.0, 500), np.linspace(0, 1, 11)).tolist()
    edges = prediction_buckets("value", {"quantiles": deciles, "rows": 500})
    assert edges[0] <= 180.0
    assert edges[-1] > 3200.0
    assert 10 <= len(edges) <= 13
    assert list(edges) == sorted(set(edges))
    few = prediction_buckets("value", {"quantiles": [300.0, 450.0, 900.0], "rows": 3})
    assert few[0] <= 30.0
    assert few[-1] >= 9000.0
    signed = prediction_buckets("value", {"quantiles": [-40.0, 2.0, 55.0], "rows": 3})
    assert min(signed) <= -400.0
    assert 0.0 in signed
    assert max(signed) >= 550.0
    assert prediction_buckets("probability", {"quantiles": deciles, "rows": 500}) == (
        PROBABILITY_BUCKETS
    )
    assert prediction_buckets("value") == DEFAULT_VALUE_BUCKETS
    assert prediction_buckets("value", {"quantiles": [7.0, 7.0], "rows": 90}) == (
        DEFAULT_VALUE_BUCKETS
    )
