"""plinth: one ledger for versioning, monitoring, testing and automating ML.

The object model::

    Context ── settings (plinth.yaml < PLINTH_* env)
       ├── ledger  (SQLite | PostgreSQL)           records, linked by lineage edges
       │     project ─< experiment ─< run ─< params, metrics, tags
       │                                  run ─── environment (stored once per digest)
       │     artifact (owner record, logical path) ──> blob digest
       │     dataset ─< dataset_version (manifest blob: path -> digest) ─< tags
       │     model ─< model_version (manifest blob, run, signature) ─< aliases (CAS, audited)
       │     lineage_edge (src record ─relation→ dst record)
       └── blobs   (local folder | S3 | memory)    content-addressed by BLAKE3

Importing plinth is cheap: backends (SQLAlchemy, boto3, ...) load on first use.

Example::

    import plinth
    plinth.init()                       # finds plinth.yaml upward, or embedded default
    with plinth.start_run(experiment="delays", params={"lr": 0.1}) as run:
        run.log_metric("loss", 0.31)    # journaled: returns in microseconds
    plinth.get_run(run.id).metrics      # {"loss": 0.31, "system/...": ...}
"""

import typing as _typing

from plinth._version import __version__
from plinth.context import Context, current, init
from plinth.errors import PlinthError
from plinth.settings import Settings, load_settings

if _typing.TYPE_CHECKING:
    from plinth import datasets, features, monitoring, pipelines, profiles, validation
    from plinth.pipelines import pipeline, step
    from plinth.registry import api as models
    from plinth.tracking import (
        ActiveRun,
        MetricHistory,
        RunComparison,
        RunInfo,
        RunRow,
        active_run,
        compare_runs,
        get_run,
        metric_history,
        search_runs,
        seed_everything,
        start_run,
    )

# Loaded on first access, so that `import plinth` stays cheap. Modules map to themselves.
_LAZY_MODULES = {
    "datasets": "plinth.datasets",
    "features": "plinth.features",
    "models": "plinth.registry.api",
    "monitoring": "plinth.monitoring",
    "pipelines": "plinth.pipelines",
    "profiles": "plinth.profiles",
    "validation": "plinth.validation",
}
_LAZY = {
    "ActiveRun": "plinth.tracking",
    "MetricHistory": "plinth.tracking",
    "RunComparison": "plinth.tracking",
    "RunInfo": "plinth.tracking",
    "RunRow": "plinth.tracking",
    "active_run": "plinth.tracking",
    "compare_runs": "plinth.tracking",
    "get_run": "plinth.tracking",
    "metric_history": "plinth.tracking",
    "pipeline": "plinth.pipelines",
    "search_runs": "plinth.tracking",
    "seed_everything": "plinth.tracking",
    "start_run": "plinth.tracking",
    "step": "plinth.pipelines",
}

__all__ = [
    "ActiveRun",
    "Context",
    "MetricHistory",
    "PlinthError",
    "RunComparison",
    "RunInfo",
    "RunRow",
    "Settings",
    "__version__",
    "active_run",
    "compare_runs",
    "current",
    "datasets",
    "features",
    "get_run",
    "init",
    "load_settings",
    "metric_history",
    "models",
    "monitoring",
    "pipeline",
    "pipelines",
    "profiles",
    "search_runs",
    "seed_everything",
    "start_run",
    "step",
    "validation",
]


def __getattr__(name: str) -> _typing.Any:
    import importlib

    if name in _LAZY_MODULES:
        value = importlib.import_module(_LAZY_MODULES[name])
        globals()[name] = value
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'plinth' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_LAZY_MODULES))
