"""Every error plinth raises on purpose.

Each error carries a message (what went wrong, where), a ``hint`` (what to do next), the
CLI ``exit_code`` (2 for usage and input errors, 1 for a failed check) and an HTTP
``status``. The CLI prints ``error: <message> (<hint>)`` on one line; over HTTP,
:func:`http_error` answers ``status`` with ``to_dict()``:
``{"errors": [{"type": ..., "field": ..., "message": ..., "hint": ...}]}``.

    PlinthError
    ├── ConfigError                 bad plinth.yaml, unknown setting, bad value or URI   (2, 400)
    │   └── MissingExtraError       a backend needs an optional extra that is missing    (2, 501)
    ├── UsageError                  bad arguments to a command or function               (2, 400)
    │   ├── InvalidPathError        an artifact path that is empty or escapes its owner  (2, 400)
    │   ├── UntrustedModelError     loading a model would run code nobody vouched for    (2, 403)
    │   └── RequestError            an HTTP request refused, one entry per bad field     (2, 422)
    │       └── PayloadTooLargeError more rows or bytes than the deployment takes        (2, 413)
    ├── NotFoundError               a record or blob that does not exist                 (2, 404)
    ├── ConflictError               a write that contradicts what is recorded            (2, 409)
    │   └── ProjectExistsError      ``plinth init`` over an existing project             (2, 409)
    ├── BackendError                a backend is unreachable or misbehaves               (2, 503)
    │   ├── LedgerUnavailableError  the metadata database cannot be reached              (2, 503)
    │   ├── BlobStoreError          the artifact store cannot be reached or written      (2, 503)
    │   └── NotReadyError           a model server whose models are still loading        (2, 503)
    ├── ModelFailedError            the served model raised while predicting             (1, 500)
    ├── IntegrityError              stored data does not match its digest                (1, 500)
    │   └── BlobCorruptedError      a blob's content does not hash to its name           (1, 500)
    └── CheckFailedError            a check ran and failed (validation, drift gate)      (1, 422)
        ├── GateFailedError         a pipeline gate or rollout decided against going on  (1, 422)
        ├── PolicyViolationError    a run loaded a pii policy column in plain form       (1, 422)
        └── QuarantinedError        a dataset version that failed its suite was loaded   (1, 422)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

__all__ = [
    "BackendError",
    "BlobCorruptedError",
    "BlobStoreError",
    "CheckFailedError",
    "ConfigError",
    "ConflictError",
    "GateFailedError",
    "IntegrityError",
    "InvalidPathError",
    "LedgerUnavailableError",
    "MissingExtraError",
    "ModelFailedError",
    "NotFoundError",
    "NotReadyError",
    "PayloadTooLargeError",
    "PlinthError",
    "PolicyViolationError",
    "ProjectExistsError",
    "QuarantinedError",
    "RequestError",
    "UntrustedModelError",
    "UsageError",
    "http_error",
]


class PlinthError(Exception):
    """Root of every error plinth raises on purpose."""

    exit_code: int = 2
    status: int = 400
    default_hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        #: The setting, argument or request field the error is about, when there is one.
        self.field = field

    def __str__(self) -> str:
        return self.message

    def one_line(self) -> str:
        """The message and hint as one line, as the CLI prints it."""
        text = self.message.rstrip(".")
        return f"{text} ({self.hint})" if self.hint else text

    def to_dict(self) -> dict[str, object]:
        """The JSON error shape shared by the CLI's ``--json`` and the HTTP servers."""
        return {"errors": [self._entry(self.field, self.message)]}

    def _entry(self, field: str | None, message: str) -> dict[str, object]:
        return {"type": type(self).__name__, "field": field, "message": message, "hint": self.hint}


class ConfigError(PlinthError):
    """plinth.yaml or a ``PLINTH_*`` variable is malformed, unknown or has a bad value."""

    status = 400
    default_hint = "see docs/settings.md for every setting and its accepted values"


class MissingExtraError(ConfigError):
    """A configured backend needs an optional dependency that is not installed."""

    status = 501

    def __init__(self, feature: str, extra: str, *, field: str | None = None):
        super().__init__(
            f"{feature} needs the optional '{extra}' extra, which is not installed",
            hint=f"install it with: pip install 'plinth[{extra}]'",
            field=field,
        )
        self.extra = extra


class UsageError(PlinthError):
    """Arguments to a command or function are wrong."""


class InvalidPathError(UsageError):
    """An artifact path is empty, absolute, or would escape its owner."""

    default_hint = "use a relative path with '/' separators and no '..', e.g. 'plots/loss.png'"


class UntrustedModelError(UsageError):
    """Loading a model would unpickle or import code that was not vouched for.

    Raised for a pickled (or python-function) model loaded without ``trusted=True`` or whose
    file digest is not among those recorded when it was logged, and for a skops file that
    holds a type outside plinth's allow-list.
    """

    status = 403
    default_hint = (
        "load it with trusted=True only if you trust whoever logged it; pickled files must "
        "also match the digests recorded at logging time"
    )


class RequestError(UsageError):
    """An HTTP request the server refuses; ``problems`` names every bad field at once."""

    status = 422
    default_hint = "GET /openapi.json describes the requests this server takes"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        field: str | None = None,
        problems: Sequence[tuple[str | None, str]] = (),
    ):
        super().__init__(message, hint=hint, field=field)
        #: Every ``(field, message)`` found, in order; the error's own when none are given.
        self.problems: list[tuple[str | None, str]] = list(problems) or [(field, message)]

    @classmethod
    def naming(cls, problems: Sequence[tuple[str | None, str]]) -> Self:
        """The error for ``problems`` (at least one), led by the first."""
        field, message = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        where = f"{field}: " if field else ""
        return cls(f"{where}{message}{more}", field=field, problems=problems)

    def to_dict(self) -> dict[str, object]:
        return {"errors": [self._entry(field, message) for field, message in self.problems]}


class PayloadTooLargeError(RequestError):
    """A request with more rows or bytes than the deployment's ``limits`` allow."""

    status = 413
    default_hint = (
        "send fewer rows per request, or raise limits.max_rows / limits.max_body_bytes in "
        "the deployment spec"
    )


class NotFoundError(PlinthError):
    """A record or blob that was asked for does not exist."""

    status = 404


class ConflictError(PlinthError):
    """A write contradicts what the ledger already holds."""

    status = 409


class ProjectExistsError(ConflictError):
    """``plinth init`` found an existing project."""

    default_hint = "pass --force to overwrite plinth.yaml (the ledger and artifacts are kept)"


class BackendError(PlinthError):
    """A backend (database, object store, cache) is unreachable or misbehaves."""

    status = 503


class LedgerUnavailableError(BackendError):
    """The metadata database cannot be reached or opened."""

    default_hint = "check the 'metadata' setting and that the database server is running"


class BlobStoreError(BackendError):
    """The artifact store cannot be reached, read or written."""

    default_hint = "check the 'artifacts' setting, credentials and permissions"


class NotReadyError(BackendError):
    """A model server was asked to predict before its models were loaded."""

    default_hint = "retry when GET /ready answers 200"


class ModelFailedError(PlinthError):
    """The served model raised while predicting a request that passed every check."""

    exit_code = 1
    status = 500
    default_hint = "the server's log has the model's traceback"


class IntegrityError(PlinthError):
    """Stored data does not match what was recorded."""

    exit_code = 1
    status = 500


class BlobCorruptedError(IntegrityError):
    """A blob's bytes do not hash to the digest it is stored under."""

    default_hint = (
        "restore the blob from a backup or re-log the artifact; 'plinth gc' never fixes this"
    )

    def __init__(self, digest: str, location: str, actual: str | None = None):
        detail = f" (its content hashes to {actual})" if actual else ""
        super().__init__(f"blob {digest} at {location} is corrupted{detail}")
        self.digest = digest
        self.location = location


class CheckFailedError(PlinthError):
    """A check ran to completion and did not pass."""

    exit_code = 1
    status = 422


class GateFailedError(CheckFailedError):
    """A pipeline gate or rollout check failed; ``decision`` is the recorded
    :class:`plinth.entities.Decision` with its evidence.

    Raised by a gate used as a pipeline step, it fails the step (never retried: the same
    inputs decide the same way) and so stops the pipeline (the steps after it are skipped).
    """

    default_hint = "the decision's evidence says why: plinth pipeline show RUN, or ledger decisions"

    def __init__(self, message: str, *, decision: Any, hint: str | None = None) -> None:
        super().__init__(message, hint=hint, field=decision.kind)
        #: The recorded decision (a ``plinth.entities.Decision``; typed loosely because
        #: the errors module sits below the entities).
        self.decision = decision


class PolicyViolationError(CheckFailedError):
    """A run loaded a dataset whose ``pii`` policy columns are still in plain form."""

    default_hint = (
        "load the version outside a run, mask or drop the columns, save the result as a new "
        "version and train on that one"
    )


class QuarantinedError(CheckFailedError):
    """A dataset version that failed its validation suite when added was loaded."""

    default_hint = "load an earlier version, or pass allow_quarantined=True to read it anyway"


def http_error(error: BaseException) -> tuple[int, dict[str, object]]:
    """The HTTP status and JSON body answering ``error``: the one error shape of plinth's servers.

    A :class:`PlinthError` answers its ``status`` and ``to_dict()``; anything else is a 500
    naming only the exception's type, since its message may hold what a client must not see.
    """
    if isinstance(error, PlinthError):
        return error.status, error.to_dict()
    name = type(error).__name__
    return 500, {
        "errors": [
            {
                "type": name,
                "field": None,
                "message": f"internal error: {name}",
                "hint": "the server's log has the traceback",
            }
        ]
    }
