"""Versioning and reproducibility: code and environment capture, and reproducing a run.

Owns what a run records about *how it was made* and how to make it again:

    capture_source()       git commit, branch, remote (credentials stripped), dirty flag,
                           uncommitted diff, untracked files, entry point, argv, cwd
    capture_environment()  Python, platform, CPU, CUDA/driver, installed packages, digest
    save_source(), save_environment()
                           store those captures in the ledger (the tracking pillar calls them)
    plan_reproduction()    what a rerun will run, checked (paths in the tree, env scrubbed)
    reproduce_run()        with consent: recorded commit + diff in a worktree, rerun, compare

May import the plinth core (settings, context, errors, ids, entities, ledger, storage,
guards); no other pillar (tracking and serving import this one). Nothing here imports torch
or numpy.
"""

import typing as _typing

from plinth._lazy import lazy_attributes

if _typing.TYPE_CHECKING:
    from plinth.versioning.code import (
        REPRODUCE_OF_ENV,
        SOURCE_DIFF_PATH,
        SOURCE_UNTRACKED_PATH,
        SourceCapture,
        capture_source,
        module_entry_point,
        reproduce_of,
        save_source,
        strip_credentials,
    )
    from plinth.versioning.env import (
        EnvironmentCapture,
        PackageDiff,
        capture_environment,
        diff_environments,
        export_environment,
        save_environment,
    )
    from plinth.versioning.reproduce import MetricDiff, ParamDiff, ReproduceResult, reproduce_run
    from plinth.versioning.reproduce_plan import ReproducePlan, plan_reproduction

# Loaded on first access: `import plinth.versioning` must stay quick.
_LAZY = {
    "EnvironmentCapture": "plinth.versioning.env",
    "MetricDiff": "plinth.versioning.reproduce",
    "PackageDiff": "plinth.versioning.env",
    "ParamDiff": "plinth.versioning.reproduce",
    "REPRODUCE_OF_ENV": "plinth.versioning.code",
    "ReproducePlan": "plinth.versioning.reproduce_plan",
    "ReproduceResult": "plinth.versioning.reproduce",
    "SOURCE_DIFF_PATH": "plinth.versioning.code",
    "SOURCE_UNTRACKED_PATH": "plinth.versioning.code",
    "SourceCapture": "plinth.versioning.code",
    "capture_environment": "plinth.versioning.env",
    "capture_source": "plinth.versioning.code",
    "diff_environments": "plinth.versioning.env",
    "export_environment": "plinth.versioning.env",
    "module_entry_point": "plinth.versioning.code",
    "plan_reproduction": "plinth.versioning.reproduce_plan",
    "reproduce_of": "plinth.versioning.code",
    "reproduce_run": "plinth.versioning.reproduce",
    "save_environment": "plinth.versioning.env",
    "save_source": "plinth.versioning.code",
    "strip_credentials": "plinth.versioning.code",
}

__all__ = [
    "REPRODUCE_OF_ENV",
    "SOURCE_DIFF_PATH",
    "SOURCE_UNTRACKED_PATH",
    "EnvironmentCapture",
    "MetricDiff",
    "PackageDiff",
    "ParamDiff",
    "ReproducePlan",
    "ReproduceResult",
    "SourceCapture",
    "capture_environment",
    "capture_source",
    "diff_environments",
    "export_environment",
    "module_entry_point",
    "plan_reproduction",
    "reproduce_of",
    "reproduce_run",
    "save_environment",
    "save_source",
    "strip_credentials",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
