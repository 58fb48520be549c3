"""ONNX models: the .onnx file as is; loading gives an onnxruntime session when installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plinth._extras import require
from plinth.registry.flavors.base import FlavorInfo, PlinthModel

FILE = "model.onnx"


def save(model: Any, folder: Path) -> FlavorInfo:
    path = folder / FILE
    if isinstance(model, bytes | bytearray):
        path.write_bytes(bytes(model))
    else:
        model_bytes = model.SerializeToString()  # an onnx.ModelProto
        path.write_bytes(model_bytes)
    return FlavorInfo("onnx", (FILE,), needs_pickle=False, loader="onnxruntime.InferenceSession")


def load(folder: Path, info: FlavorInfo, *, trusted: bool) -> PlinthModel:
    ort = require("onnxruntime", feature="running ONNX models")
    session = ort.InferenceSession(str(folder / FILE), providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]

    def predict(data: Any) -> Any:
        if isinstance(data, dict):
            feeds = data
        elif hasattr(data, "columns") and len(inputs) > 1:
            feeds = {name: data[name].to_numpy() for name in inputs}
        else:
            import numpy as np

            array = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
            feeds = {inputs[0]: array}
        return session.run(None, feeds)[0]

    return PlinthModel("onnx", session, predict=predict)
