"""Registry records: a named model, its numbered versions, and the audit record of alias moves."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["UNCHECKED", "AliasMove", "Model", "ModelVersion", "Unchecked"]


class Unchecked(enum.Enum):
    """The type of :data:`UNCHECKED`."""

    UNCHECKED = "unchecked"


#: ``expected=UNCHECKED`` (the default) moves an alias wherever it points now; pass the
#: version it must point at (or None: it must be unset) for a compare-and-swap.
UNCHECKED: Final = Unchecked.UNCHECKED


@dataclass(frozen=True)
class Model:
    """A named model of a project; ``versions`` is how many versions it has (the latest)."""

    id: str
    project_id: str
    name: str
    versions: int
    created_at: int
    created_by: str
    description: str | None = None


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model: ``NAME@number``. Never changes once registered.

    ``manifest_digest`` is the blob listing the model's files (path -> digest, size);
    ``metrics`` a snapshot of the run's final metrics; ``trusted_digests`` the files that
    need pickle to load, recorded when the model was logged. ``aliases`` are the names
    (``champion``, ...) pointing at this version when it was read.
    """

    id: str
    model_id: str
    model: str
    number: int
    flavor: str
    manifest_digest: str
    created_at: int
    created_by: str
    run_id: str | None = None
    signature: dict[str, Any] | None = None
    environment_id: str | None = None
    metrics: dict[str, float] | None = None
    trusted_digests: tuple[str, ...] = field(default=())
    description: str | None = None
    aliases: tuple[str, ...] = field(default=())

    @property
    def ref(self) -> str:
        """``NAME@NUMBER``, the reference that names this version."""
        return f"{self.model}@{self.number}"

    @property
    def version(self) -> int:
        """The version number (the same as ``number``)."""
        return self.number


@dataclass(frozen=True)
class AliasMove:
    """The audit record of one alias move: who moved ``alias`` from where to where, and why.

    ``from_number`` is None when the alias was newly set; ``to_number`` None when it was
    deleted.
    """

    id: str
    model_id: str
    model: str
    alias: str
    from_number: int | None
    to_number: int | None
    reason: str | None
    created_at: int
    created_by: str
