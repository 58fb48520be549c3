"""The feature store (issue 14, in progress): point-in-time correct training data.

Owns, so far, the offline join engine::

    ViewData               one feature view's rows and the columns that time them
    point_in_time_join()   entity rows + views -> every entity row with the feature values
                           valid at its time (event time <= entity time, TTL inclusive,
                           latest created timestamp wins ties), in DuckDB

Definitions (``Entity``, ``FeatureView``, ``FeatureService``), the ledger records,
materialization and online lookup come next (docs/features.md).

A pillar: may import the plinth core (``tables``, ``guards``, ``errors`` today; ``context``,
``ledger``, ``storage`` next) and the pillars below it (datasets, registry, monitoring,
tracking); serving and the interfaces import it, never the reverse. pyarrow and DuckDB load
inside the functions that need them: ``import plinth.features`` stays light.
"""

import typing as _typing

from plinth._lazy import lazy_attributes

if _typing.TYPE_CHECKING:
    from plinth.features.offline import ViewData, point_in_time_join

# Loaded on first access: `import plinth.features` must stay quick.
_LAZY = {
    "ViewData": "plinth.features.offline",
    "point_in_time_join": "plinth.features.offline",
}

__all__ = ["ViewData", "point_in_time_join"]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
