from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from plinth.errors import IntegrityError, UntrustedModelError, UsageError
from plinth.registry.flavors import flavor_of, load_model, save_model
from plinth.storage.content import hash_file

pd = pytest.importorskip("pandas")
pytest.importorskip("skops")


class Doubler:
    """A python-function model: any object with predict()."""

    def predict(self, data: Any) -> Any:
        return np.asarray(data) * 2


class Custom:
    """A class skops does not know and plinth does not allow-list."""

    def __init__(self) -> None:
        self.factor = 3


def _xy() -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    return x, (x[:, 0] + x[:, 1] > 0).astype(int)


def test_logistic_regression_round_trip(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = _xy()
    model = LogisticRegression().fit(x, y)
    info = save_model(model, tmp_path)
    assert (info.flavor, info.files, info.needs_pickle) == ("sklearn", ("model.skops",), False)
    loaded = load_model(tmp_path, info)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


def test_pipeline_with_column_transformer_round_trip(tmp_path: Path) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x, y = _xy()
    frame = pd.DataFrame({"a": x[:, 0], "city": np.where(x[:, 1] > 0, "paris", "oslo")})
    pipeline = make_pipeline(
        ColumnTransformer(
            [
                ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
                ("a", StandardScaler(), ["a"]),
            ]
        ),
        LogisticRegression(),
    ).fit(frame, y)
    loaded = load_model(tmp_path, save_model(pipeline, tmp_path))
    np.testing.assert_array_equal(loaded.predict(frame), pipeline.predict(frame))


def test_hist_gradient_boosting_loads_through_the_allow_list(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = _xy()
    model = HistGradientBoostingClassifier(max_iter=10).fit(x, y)
    loaded = load_model(tmp_path, save_model(model, tmp_path))  # holds TreePredictor
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


def test_categorical_hist_gradient_boosting_loads_through_the_allow_list(tmp_path: Path) -> None:
    """Native categorical splits wrap check_array in functools.partial: both are admitted."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = _xy()
    codes = (x[:, 2] > 0).astype(float)
    features = np.column_stack([codes, x[:, :2]])
    model = HistGradientBoostingClassifier(max_iter=10, categorical_features=[0]).fit(features, y)
    loaded = load_model(tmp_path, save_model(model, tmp_path))
    np.testing.assert_array_equal(loaded.predict_proba(features), model.predict_proba(features))


def test_a_partial_of_a_function_outside_the_allow_list_is_refused(tmp_path: Path) -> None:
    import functools

    from sklearn.preprocessing import FunctionTransformer

    model = FunctionTransformer(func=functools.partial(np.round, decimals=1))
    info = save_model(model, tmp_path)
    with pytest.raises(UntrustedModelError, match=r"allow-list: .*numpy.*round"):
        load_model(tmp_path, info)


def test_skops_file_with_a_type_outside_the_allow_list_is_refused(tmp_path: Path) -> None:
    from sklearn.preprocessing import FunctionTransformer

    model = FunctionTransformer(kw_args={"payload": Custom()})
    info = save_model(model, tmp_path)
    with pytest.raises(UntrustedModelError, match=r"allow-list: .*Custom") as caught:
        load_model(tmp_path, info)
    assert caught.value.exit_code == 2
    assert "trusted=True" in caught.value.hint
    loaded = load_model(tmp_path, info, trusted=True)
    assert loaded.model.kw_args["payload"].factor == 3


def test_python_function_needs_trust_and_a_recorded_digest(tmp_path: Path) -> None:
    info = save_model(Doubler(), tmp_path)
    assert (info.flavor, info.needs_pickle) == ("python_function", True)
    digest = hash_file(tmp_path / "model.pkl").digest
    with pytest.raises(UntrustedModelError, match="pickled"):
        load_model(tmp_path, info, trusted_digests=[digest])
    with pytest.raises(UntrustedModelError, match="not one the model was logged with"):
        load_model(tmp_path, info, trusted=True, trusted_digests=["0" * 64])
    with pytest.raises(UntrustedModelError):
        load_model(tmp_path, info, trusted=True)
    loaded = load_model(tmp_path, info, trusted=True, trusted_digests=[digest])
    assert loaded.predict([1, 2]).tolist() == [2, 4]
    assert not hasattr(loaded, "predict_proba")


def test_a_file_changed_after_logging_is_refused(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = _xy()
    info = save_model(LogisticRegression().fit(x, y), tmp_path)
    recorded = {"model.skops": hash_file(tmp_path / "model.skops").digest}
    (tmp_path / "model.skops").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match=r"model file model\.skops hashes to"):
        load_model(tmp_path, info, digests=recorded)


def test_flavor_is_chosen_by_type() -> None:
    from sklearn.linear_model import LinearRegression

    assert flavor_of(LinearRegression()) == "sklearn"
    assert flavor_of(Doubler()) == "python_function"
    assert flavor_of(len) == "python_function"
    with pytest.raises(UsageError, match="does not know how to save a int"):
        flavor_of(3)
    with pytest.raises(UsageError, match="unknown model flavor 'keras'"):
        save_model(Doubler(), Path("unused"), flavor="keras")


def test_lambdas_cannot_be_saved(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot pickle"):
        save_model(lambda x: x, tmp_path)


def test_lightgbm_round_trip(tmp_path: Path) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    x, y = _xy()
    model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, y)
    info = save_model(model, tmp_path)
    assert (info.flavor, info.needs_pickle) == ("lightgbm", False)
    np.testing.assert_allclose(load_model(tmp_path, info).predict(x), model.booster_.predict(x))


def test_xgboost_round_trip(tmp_path: Path) -> None:
    xgboost = pytest.importorskip("xgboost")
    x, y = _xy()
    model = xgboost.XGBClassifier(n_estimators=5).fit(x, y)
    info = save_model(model, tmp_path)
    assert (info.flavor, info.needs_pickle) == ("xgboost", False)
    np.testing.assert_array_equal(load_model(tmp_path, info).predict(x), model.predict(x))


def test_torchscript_round_trip(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    module = torch.jit.script(torch.nn.Linear(3, 1))
    info = save_model(module, tmp_path)
    assert info.flavor == "torch"
    data = torch.ones(2, 3)
    torch.testing.assert_close(load_model(tmp_path, info).predict(data), module(data))


def test_onnx_round_trip_through_onnxruntime(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    weights = np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        initializer=[numpy_helper.from_array(weights, name="w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    info = save_model(model, tmp_path)
    assert (info.flavor, info.files, info.needs_pickle) == ("onnx", ("model.onnx",), False)
    x, _ = _xy()
    loaded = load_model(tmp_path, info)
    expected = x.astype(np.float32) @ weights
    np.testing.assert_allclose(loaded.predict(x.astype(np.float32)), expected, rtol=1e-6)


def test_the_pickle_loader_checks_trust_and_the_bytes_it_unpickles(tmp_path: Path) -> None:
    """The python_function loader is gated itself, not only by its caller."""
    from plinth.registry.flavors import _pyfunc

    info = save_model(Doubler(), tmp_path)
    digest = hash_file(tmp_path / "model.pkl").digest
    with pytest.raises(UntrustedModelError, match="pickled"):
        _pyfunc.load(tmp_path, info, trusted=False, trusted_digests=[digest])
    with pytest.raises(UntrustedModelError, match="not one the model was logged with"):
        _pyfunc.load(tmp_path, info, trusted=True)
    swapped = tmp_path / "model.pkl"
    swapped.write_bytes(swapped.read_bytes() + b".")  # the checked file was replaced
    with pytest.raises(UntrustedModelError, match="not one the model was logged with"):
        _pyfunc.load(tmp_path, info, trusted=True, trusted_digests=[digest])
