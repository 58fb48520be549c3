"""What both dataset stores share, without SQLAlchemy: checks, version specs, row -> record.

:class:`plinth.ledger.datasets.DatasetStore` (SQLAlchemy, every backend) and
:class:`plinth.ledger.sqlite_datasets.SqliteDatasetStore` (the standard library's sqlite3,
for commands that must start fast) read and write the same rows the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from plinth.entities import DATASET_KINDS, VERSION_STATUSES, Dataset, DatasetVersion, Erasure
from plinth.errors import ConflictError, NotFoundError, UsageError
from plinth.refs import check_label, check_name
from plinth.refs import parse_spec as refs_parse_spec

__all__ = [
    "check_dataset_name",
    "check_digest",
    "check_erasure",
    "check_new_version",
    "check_status",
    "check_tag",
    "dataset_of",
    "erased_is_final",
    "erasure_of",
    "missing_version",
    "parse_spec",
    "scrubbed",
    "tag_conflict",
    "unknown_dataset",
    "version_of",
]

_DIGEST = re.compile(r"[0-9a-f]{64}")


def check_dataset_name(name: object) -> str:
    """``name`` if it can name a dataset: the name rule of :mod:`plinth.refs`."""
    return check_name(name, what="dataset", field="name")


def check_tag(tag: object) -> str:
    """``tag`` if a new tag may be called so: the label rule of :mod:`plinth.refs`."""
    return check_label(tag, what="tag", field="tag")


def parse_spec(spec: str | int | None) -> int | str | None:
    """A version spec as a number, a tag, or None for the latest version."""
    return refs_parse_spec(spec, what="dataset", field="version")


def check_new_version(
    kind: str,
    manifest_digest: str,
    size: int,
    file_count: int,
    row_count: int | None,
    status: str = "published",
    profile_digest: str | None = None,
) -> None:
    """Raise :class:`UsageError` for a malformed new version."""
    check_status(status)
    if status == "erased":
        raise UsageError("a new dataset version cannot be erased", field="status")
    if profile_digest is not None:
        check_digest(profile_digest, "profile digest")
    if kind not in DATASET_KINDS:
        raise UsageError(f"dataset kind must be one of {', '.join(DATASET_KINDS)}, got {kind!r}")
    if not isinstance(manifest_digest, str) or not _DIGEST.fullmatch(manifest_digest):
        raise UsageError(
            f"manifest digest must be 64 lowercase hex characters, got {manifest_digest!r}"
        )
    for what, value in (("size", size), ("file count", file_count), ("row count", row_count)):
        if value is None and what == "row count":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"dataset {what} must be an integer >= 0, got {value!r}")


def missing_version(dataset: Dataset, spec: int | str | None) -> NotFoundError:
    """The error for a version or tag a dataset does not have."""
    if spec is None:
        return NotFoundError(
            f"dataset {dataset.name!r} has no versions yet",
            hint=f"add one with: plinth data add PATH --name {dataset.name}",
            field="version",
        )
    if isinstance(spec, int):
        known = f"versions 1 to {dataset.versions}" if dataset.versions else "no versions yet"
        return NotFoundError(
            f"dataset {dataset.name!r} has no version {spec} ({known})",
            hint=f"list them with: plinth data log {dataset.name}",
            field="version",
        )
    return NotFoundError(
        f"dataset {dataset.name!r} has no tag {spec!r}",
        hint=f"tag a version with: plinth data tag {dataset.name}@N {spec}",
        field="version",
    )


def unknown_dataset(name: str, known: list[str]) -> NotFoundError:
    """The error for a dataset name the project does not have, listing those it has."""
    listed = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "")
    return NotFoundError(
        f"no dataset named {name!r} in this project",
        hint=f"datasets: {listed}" if known else f"add it with: plinth data add PATH --name {name}",
        field="name",
    )


def tag_conflict(dataset: Dataset, tag: str, current: int, wanted: int) -> ConflictError:
    """The error for moving a tag without saying so."""
    return ConflictError(
        f"tag {tag!r} of dataset {dataset.name!r} is on version {current}; "
        f"cannot put it on version {wanted}",
        hint="pass --force (move=True) to move the tag",
        field="tag",
    )


def dataset_of(m: Mapping[Any, Any]) -> Dataset:
    return Dataset(
        id=m["id"],
        project_id=m["project_id"],
        name=m["name"],
        versions=m["versions"],
        created_at=m["created_at"],
        created_by=m["created_by"],
    )


def version_of(m: Mapping[Any, Any], dataset: str, tags: tuple[str, ...] = ()) -> DatasetVersion:
    schema = m["schema"]
    if isinstance(schema, str):  # sqlite3 hands JSON columns back as text
        schema = json.loads(schema)
    return DatasetVersion(
        id=m["id"],
        dataset_id=m["dataset_id"],
        dataset=dataset,
        number=m["number"],
        parent=m["parent_number"],
        kind=m["kind"],
        manifest_digest=m["manifest_digest"],
        size=m["size"],
        file_count=m["file_count"],
        message=m["message"],
        created_at=m["created_at"],
        created_by=m["created_by"],
        row_count=m["row_count"],
        schema=schema,
        tags=tags,
        status=m["status"],
        profile_digest=m["profile_digest"],
    )


def check_status(status: object) -> str:
    """``status`` if it is a version status."""
    if status not in VERSION_STATUSES:
        raise UsageError(
            f"dataset version status must be one of {', '.join(VERSION_STATUSES)}, got {status!r}",
            field="status",
        )
    return str(status)


def check_digest(digest: object, what: str) -> str:
    """``digest`` if it is 64 lowercase hex characters."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise UsageError(f"{what} must be 64 lowercase hex characters, got {digest!r}")
    return digest


def erased_is_final() -> ConflictError:
    """The error for publishing or quarantining an erased version."""
    return ConflictError(
        "an erased dataset version cannot change status: the rows it held were removed",
        hint="add the data again as a new version",
        field="status",
    )


def check_erasure(predicate: object, message: object, rows_removed: object) -> None:
    """Raise :class:`UsageError` for an erasure record that says too little."""
    for what, value in (("predicate", predicate), ("message", message)):
        if not isinstance(value, str) or not value.strip():
            raise UsageError(
                f"an erasure needs a non-empty {what}, got {value!r}",
                hint="say which rows were removed (--where) and why (-m)",
                field=what,
            )
    if isinstance(rows_removed, bool) or not isinstance(rows_removed, int) or rows_removed < 0:
        raise UsageError(f"rows removed must be an integer >= 0, got {rows_removed!r}")


def scrubbed(results: Any) -> list[dict[str, Any]]:
    """Validation results without the values they quote (samples of failing values)."""
    if isinstance(results, str):
        results = json.loads(results)
    return [
        {**r, "sample": [], "observed": None if "sample" in r else r.get("observed")}
        if isinstance(r, dict)
        else r
        for r in results or []
    ]


def erasure_of(m: Mapping[Any, Any]) -> Erasure:
    def listed(value: Any) -> list[Any]:
        return list(json.loads(value) if isinstance(value, str) else value)

    return Erasure(
        id=m["id"],
        dataset_id=m["dataset_id"],
        predicate=m["predicate"],
        message=m["message"],
        rows_removed=m["rows_removed"],
        new_number=m["new_number"],
        erased_numbers=tuple(int(n) for n in listed(m["erased_numbers"])),
        released_blobs=tuple(str(d) for d in listed(m["released_blobs"])),
        created_at=m["created_at"],
        created_by=m["created_by"],
    )
