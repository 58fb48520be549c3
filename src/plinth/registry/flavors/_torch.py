"""PyTorch: TorchScript modules, torch.export programs, and state dicts as safetensors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plinth._extras import require
from plinth.errors import UsageError
from plinth.registry.flavors.base import FlavorInfo, PlinthModel

SCRIPT_FILE = "model.pt"
EXPORT_FILE = "model.pt2"
STATE_FILE = "model.safetensors"


def _module(name: str) -> Any:
    return require(name, feature=f"the torch flavor ({name})")


def save(model: Any, folder: Path) -> FlavorInfo:
    torch = _module("torch")
    if isinstance(model, torch.jit.ScriptModule):
        torch.jit.save(model, str(folder / SCRIPT_FILE))
        return FlavorInfo("torch", (SCRIPT_FILE,), False, "torch.jit.load", {"kind": "script"})
    if isinstance(model, torch.export.ExportedProgram):
        torch.export.save(model, str(folder / EXPORT_FILE))
        return FlavorInfo("torch", (EXPORT_FILE,), False, "torch.export.load", {"kind": "export"})
    if isinstance(model, Mapping) and all(isinstance(v, torch.Tensor) for v in model.values()):
        safetensors = _module("safetensors.torch")
        safetensors.save_file(dict(model), str(folder / STATE_FILE))
        return FlavorInfo("torch", (STATE_FILE,), False, "safetensors", {"kind": "state_dict"})
    raise UsageError(
        f"cannot save a {type(model).__name__} without pickle",
        hint="log torch.jit.script(model), torch.export.export(model, args) or model.state_dict()",
        field="model",
    )


def load(folder: Path, info: FlavorInfo, *, trusted: bool) -> PlinthModel:
    torch = _module("torch")
    kind = info.extra.get("kind")
    if kind == "script":
        module = torch.jit.load(str(folder / SCRIPT_FILE), map_location="cpu")
        return PlinthModel("torch", module, predict=module)
    if kind == "export":
        program = torch.export.load(str(folder / EXPORT_FILE))
        runnable = program.module()
        return PlinthModel("torch", program, predict=runnable)
    safetensors = _module("safetensors.torch")
    state = safetensors.load_file(str(folder / STATE_FILE))
    return PlinthModel("torch", state)
