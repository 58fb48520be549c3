"""Datasets: versioned files, folders and tables, content-addressed and linked to runs.

A version is a manifest blob (every file's relative path, BLAKE3 digest and size) plus a
ledger record (number, parent, message, author, size, file count; rows, schema and profile
for tables). References: ``NAME`` / ``NAME@latest`` (newest), ``NAME@3``, ``NAME@gold``::

    import plinth
    plinth.datasets.add("data/flights", "flights", message="January")   # -> AddResult
    plinth.datasets.status("flights", "data/flights").clean
    df = plinth.datasets.load("flights", version="gold", to="pandas")  # in a run: "used"
    plinth.datasets.save(df, "flights-clean", message="deduplicated")   # in a run: "produced"

Owns::

    api.py          add, status, diff, checkout, tag, get, manifest, versions,
                    list_datasets, load, save, mask, forget (log: deprecated, versions)
    catalog.py      which dataset store a command talks to; NAME@SPEC references
    diffing.py      DatasetDiff: two version records compared over a blob store (diff and
                    the web UI's diff page)
    manifests.py    Manifest (path -> digest, size): reading one, comparing two of them
    snapshot.py     hashing a file or folder, answered by the stat cache where it can
    statcache.py    the local stat cache (size, mtime -> digest)
    materialize.py  writing a version's files under a folder (checkout), verified
    policy.py       pii column policies: mask(), enforce() on load inside a run
    erasure.py      forget(): the audited removal of rows from every version
    profiles.py     profile(): the stored profile of a table version (plinth.profiles)
    validation.py   validate(), infer_suite(): suites on dataset versions (plinth.validation),
                    in_dataset references loaded from the ledger

May import the plinth core (settings, context, errors, entities, ledger, storage, tables,
guards) and the public functions of ``plinth.profiles`` and ``plinth.validation``; those
never import this package. Nothing is imported until a name is used.
"""

import typing as _typing

from plinth._lazy import lazy_attributes

if _typing.TYPE_CHECKING:
    from plinth.datasets.api import (
        AddResult,
        CheckoutResult,
        DatasetDiff,
        Status,
        add,
        checkout,
        diff,
        forget,
        get,
        list_datasets,
        load,
        manifest,
        mask,
        parse_ref,
        save,
        status,
        tag,
        versions,
    )
    from plinth.datasets.profiles import profile
    from plinth.datasets.validation import infer_suite, validate

_API = "plinth.datasets.api"
_LAZY = {
    "AddResult": _API,
    "CheckoutResult": _API,
    "DatasetDiff": _API,
    "RECORD_TYPE": _API,  # the lineage record type of a version; not in __all__
    "Status": _API,
    "add": _API,
    "checkout": _API,
    "diff": _API,
    "forget": _API,
    "get": _API,
    "infer_suite": "plinth.datasets.validation",
    "list_datasets": _API,
    "load": _API,
    "log": _API,  # deprecated, out of __all__: versions
    "manifest": _API,
    "mask": _API,
    "parse_ref": _API,
    "profile": "plinth.datasets.profiles",
    "save": _API,
    "status": _API,
    "tag": _API,
    "validate": "plinth.datasets.validation",
    "versions": _API,
}

__all__ = [
    "AddResult",
    "CheckoutResult",
    "DatasetDiff",
    "Status",
    "add",
    "checkout",
    "diff",
    "forget",
    "get",
    "infer_suite",
    "list_datasets",
    "load",
    "manifest",
    "mask",
    "parse_ref",
    "profile",
    "save",
    "status",
    "tag",
    "validate",
    "versions",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
