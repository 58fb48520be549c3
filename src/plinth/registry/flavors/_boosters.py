"""LightGBM and XGBoost models in their native formats (text, UBJSON): no pickle involved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plinth._extras import require
from plinth.errors import UntrustedModelError
from plinth.registry.flavors.base import FlavorInfo, PlinthModel

LIGHTGBM_FILE = "model.txt"
XGBOOST_FILE = "model.ubj"
#: xgboost's scikit-learn wrappers a model may be loaded back into (by name, never by path).
XGBOOST_WRAPPERS = frozenset(
    {"XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor"}
)


def _module(name: str) -> Any:
    return require(name, feature=f"the {name} flavor")


def save_lightgbm(model: Any, folder: Path) -> FlavorInfo:
    booster = getattr(model, "booster_", model)  # LGBMClassifier & co wrap a Booster
    booster.save_model(str(folder / LIGHTGBM_FILE))
    return FlavorInfo(
        "lightgbm",
        (LIGHTGBM_FILE,),
        needs_pickle=False,
        loader="lightgbm.Booster",
        extra={"class": type(model).__name__},
    )


def load_lightgbm(folder: Path, info: FlavorInfo, *, trusted: bool) -> PlinthModel:
    lightgbm = _module("lightgbm")
    booster = lightgbm.Booster(model_file=str(folder / LIGHTGBM_FILE))
    return PlinthModel("lightgbm", booster)


def save_xgboost(model: Any, folder: Path) -> FlavorInfo:
    model.save_model(str(folder / XGBOOST_FILE))
    return FlavorInfo(
        "xgboost",
        (XGBOOST_FILE,),
        needs_pickle=False,
        loader="xgboost.load_model",
        extra={"class": type(model).__name__},
    )


def load_xgboost(folder: Path, info: FlavorInfo, *, trusted: bool) -> PlinthModel:
    xgboost = _module("xgboost")
    name = str(info.extra.get("class", "Booster"))
    if name == "Booster":
        booster = xgboost.Booster()
        booster.load_model(str(folder / XGBOOST_FILE))
        return PlinthModel(
            "xgboost", booster, predict=lambda data: booster.predict(xgboost.DMatrix(data))
        )
    if name not in XGBOOST_WRAPPERS:
        raise UntrustedModelError(f"unknown xgboost model class {name!r} in the flavor record")
    model = getattr(xgboost, name)()
    model.load_model(str(folder / XGBOOST_FILE))
    return PlinthModel("xgboost", model)
