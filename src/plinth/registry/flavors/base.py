"""What every flavor shares: the saved-model description and the loaded-model wrapper."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plinth.errors import IntegrityError, UsageError

if TYPE_CHECKING:
    from plinth.registry.flavors.signature import Signature

__all__ = ["FlavorInfo", "PlinthModel"]


@dataclass(frozen=True)
class FlavorInfo:
    """How a model was saved: its flavor, its files (relative paths), whether loading it
    unpickles, the loader that reads it back and flavor-specific details."""

    flavor: str
    files: tuple[str, ...]
    needs_pickle: bool
    loader: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "flavor": self.flavor,
            "files": list(self.files),
            "needs_pickle": self.needs_pickle,
            "loader": self.loader,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> FlavorInfo:
        try:
            return cls(
                flavor=str(doc["flavor"]),
                files=tuple(str(f) for f in doc["files"]),
                needs_pickle=bool(doc["needs_pickle"]),
                loader=str(doc["loader"]),
                extra=dict(doc.get("extra") or {}),
            )
        except (KeyError, TypeError) as exc:
            raise IntegrityError(f"model flavor description is malformed: {exc}") from None


class PlinthModel:
    """A loaded model of any flavor with one way to call it: ``predict(data)`` (and
    ``predict_proba(data)`` when the underlying model has it). ``model`` is the native object.
    """

    def __init__(
        self,
        flavor: str,
        model: Any,
        signature: Signature | None = None,
        *,
        predict: Callable[[Any], Any] | None = None,
        predict_proba: Callable[[Any], Any] | None = None,
    ) -> None:
        self.flavor = flavor
        self.model = model
        self.signature = signature
        self._predict = predict
        self._predict_proba = predict_proba

    def predict(self, data: Any) -> Any:
        if self._predict is not None:
            return self._predict(data)
        method = getattr(self.model, "predict", None)
        if method is None:
            if callable(self.model):
                return self.model(data)
            raise UsageError(
                f"the {self.flavor} model ({type(self.model).__name__}) cannot predict",
                hint="use .model to reach the native object",
            )
        return method(data)

    @property
    def predict_proba(self) -> Callable[[Any], Any]:
        """The underlying model's ``predict_proba``; AttributeError when it has none."""
        if self._predict_proba is not None:
            return self._predict_proba
        method = getattr(self.model, "predict_proba", None)
        if method is None:
            raise AttributeError(f"the {self.flavor} model has no predict_proba")
        return method  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"PlinthModel(flavor={self.flavor!r}, model={type(self.model).__name__})"
