"""Validation records: saved suite versions and the outcome of running one on some data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["SuiteVersion", "ValidationRecord"]


@dataclass(frozen=True)
class SuiteVersion:
    """One version of a named suite: ``digest`` is the blob holding its YAML text.

    Saving the same text again returns the same version; a changed text gets the next
    ``number``.
    """

    id: str
    project_id: str
    name: str
    number: int
    digest: str
    created_at: int
    created_by: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.number}"


@dataclass(frozen=True)
class ValidationRecord:
    """A suite version run on a target: a dataset version (``dataset_version_id``) or a file.

    ``results`` holds one mapping per check (``check``, ``column``, ``success``,
    ``observed``, ``expected``, ``severity``, ...); ``report_digest`` the HTML report blob.
    """

    id: str
    suite_id: str
    suite: str
    suite_number: int
    dataset_version_id: str | None
    target: str
    success: bool
    error_count: int
    warning_count: int
    results: list[dict[str, Any]]
    report_digest: str | None
    created_at: int
    created_by: str
