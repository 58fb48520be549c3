"""Progress of long work: the one protocol pillar functions report through.

Long operations (``datasets.add``, ``datasets.profile``, ``datasets.validate``,
``monitoring.drift``, batch scoring) take ``progress=`` (default ``None``: nothing is
reported) and report at natural chunk boundaries: a file hashed, a column profiled or
compared, a check answered, a record batch scored; never per row. The library draws
nothing itself: the CLI passes a Rich bar on a terminal; a notebook or a service may pass
its own object with the three methods::

    class Printed:
        def start(self, total: int, unit: str, *, label: str = "") -> None:
            print(label, total, unit)
        def advance(self, n: int = 1) -> None: ...
        def finish(self) -> None: ...

    plinth.datasets.add("data/", "flights", progress=Printed())

One operation may run several phases (hashing files, then profiling columns): each is a
``start`` then ``advance`` calls whose ``n`` add up to ``total``, then ``finish``, also
when the phase fails. Calls come from the thread that called the operation. Imports only
the standard library.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["NO_PROGRESS", "NoProgress", "Progress", "reporter"]


class Progress(Protocol):
    """Receives the progress of one phase of work at a time."""

    def start(self, total: int, unit: str, *, label: str = "") -> None:
        """A phase of ``total`` ``unit`` (``files``, ``rows``, ``columns``, ``checks``) begins;
        ``label`` says what is done to them (``hashing``)."""

    def advance(self, n: int = 1) -> None:
        """``n`` more units of the current phase are done."""

    def finish(self) -> None:
        """The current phase ended (completed or not)."""


class NoProgress:
    """Reports nothing: what an operation uses when it is given no ``progress``."""

    def start(self, total: int, unit: str, *, label: str = "") -> None:
        return None

    def advance(self, n: int = 1) -> None:
        return None

    def finish(self) -> None:
        return None


NO_PROGRESS = NoProgress()


def reporter(progress: Progress | None) -> Progress:
    """``progress``, or :data:`NO_PROGRESS` for ``None``: callers then report unconditionally."""
    return NO_PROGRESS if progress is None else progress
