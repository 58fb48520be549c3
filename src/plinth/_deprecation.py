"""Old names that keep working for one release, each with a DeprecationWarning.

One decorator, :func:`renamed`, serves every rename of the public API: keywords (``context=``
to ``ctx=``, ``as_=`` to ``to=``, ``dir=`` to ``path=``), a ``ctx`` that used to be the first
positional argument, and a whole function (:func:`alias`)::

    @renamed(keywords={"context": "ctx"}, positional_ctx=True)
    def get_run(run_id: str, *, ctx: Context | None = None) -> RunInfo: ...

    log = alias(versions, "plinth.datasets.log", "plinth.datasets.versions")
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

__all__ = ["alias", "renamed", "warn"]

P = ParamSpec("P")
R = TypeVar("R")

#: When the old names go.
REMOVAL = "the next release"


def warn(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` is deprecated in favour of ``new``."""
    warnings.warn(
        f"{old} is deprecated and will be removed in {REMOVAL}: use {new}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def _is_context(value: object) -> bool:
    from plinth.context import Context

    return isinstance(value, Context)


def renamed(
    *, keywords: Mapping[str, str] | None = None, positional_ctx: bool = False
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Accept the old spellings of a call: each ``keywords`` old -> new, and with
    ``positional_ctx`` a Context passed as the first positional argument."""
    old_keywords = dict(keywords or {})

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        name = f"{func.__module__}.{func.__qualname__}"

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_keywords.items():
                if old in kwargs:
                    if new in kwargs:
                        from plinth.errors import UsageError

                        raise UsageError(
                            f"{name}() got both {old}= and {new}=",
                            hint=f"pass only {new}= ({old}= is its deprecated name)",
                            field=new,
                        )
                    warn(f"{name}({old}=...)", f"{new}=...")
                    kwargs[new] = kwargs.pop(old)
            if positional_ctx and args and _is_context(args[0]):
                warn(f"{name}(ctx, ...) with a positional ctx", "ctx=... as a keyword")
                kwargs["ctx"] = args[0]
                args = args[1:]
            return func(*args, **kwargs)

        return wrapper

    return decorate


def alias(func: Callable[P, R], old: str, new: str) -> Callable[P, R]:
    """``func`` under its deprecated name ``old``: it warns (naming ``new``), then calls it."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        warn(old, new)
        return func(*args, **kwargs)

    return wrapper
