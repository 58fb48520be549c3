"""The feature store: versioned definitions, exact point-in-time training sets,
materialization to an online store, online lookup (also inside ``plinth serve``), skew.

::

    from plinth.features import Entity, FeatureView, FeatureService, sql
    plane = Entity("plane", join_keys=["tailnum"])
    weather = FeatureView("weather", entities=["airport"], source="weather",
                          timestamp="time_hour", ttl="3h", features={"temp": "float64"})
    plinth.features.apply([plane, weather, FeatureService("delays", [weather])])
    train = plinth.features.get_training_set(flights_df, "delays", save_as="delays-train")
    plinth.features.materialize()
    plinth.features.get_online_features("delays", [{"origin": "JFK"}])

Owns::

    definitions.py  Entity, FeatureView, OnDemandFeatureView, FeatureService, sources
    files.py        the YAML (and .py) face of the definitions
    registry.py     plan / apply / list / show against the ledger (checks.py: the checks)
    resolve.py      a service compiled for reading (views, keys, selected features)
    sources.py      reading a view's source (dataset, project Parquet, sandboxed SQL)
    rows.py         a view's typed rows: its source plus the push log
    offline.py      the point-in-time join in DuckDB; ray_engine.py: sharded over Ray
    training.py     get_training_set (entity_free.py: the entity-free grid)
    on_demand.py    on-demand functions: recorded by digest, run only on opt-in
    materialize.py  incremental materialization to the online store
    push.py         fresh rows to the online store and the offline log
    online.py       OnlineReader, get_online_features
    skew.py         served vs trained features (the work is in plinth.monitoring.skew)

A pillar: may import the plinth core and the pillars below it (datasets, registry,
monitoring, tracking); serving and the interfaces import it, never the reverse. pyarrow,
DuckDB and Ray load inside the functions that need them: ``import plinth.features`` stays
light.
"""

import typing as _typing

from plinth._lazy import lazy_attributes

# ``materialize``, ``push`` and ``skew`` name both a module and its function; bound on
# import (those modules import nothing heavy at top level) so that ``plinth.features.push``
# is always the function, even after ``import plinth.features.push`` ran somewhere.
from plinth.features.materialize import materialize
from plinth.features.push import push
from plinth.features.skew import skew

if _typing.TYPE_CHECKING:
    from plinth.features.definitions import (
        FEATURE_TYPES,
        Entity,
        FeatureSelection,
        FeatureService,
        FeatureView,
        OnDemandFeatureView,
        Source,
        parquet,
        parse_ttl,
        sql,
    )
    from plinth.features.files import load_definitions
    from plinth.features.offline import ViewData, point_in_time_join
    from plinth.features.online import OnlineReader, get_online_features
    from plinth.features.registry import (
        ApplyResult,
        Change,
        Plan,
        PlanError,
        apply,
        list_definitions,
        plan,
        show,
    )
    from plinth.features.training import TrainingSet, get_training_set

# Loaded on first access: `import plinth.features` must stay quick.
_DEFS = "plinth.features.definitions"
_REG = "plinth.features.registry"
_LAZY = {
    "FEATURE_TYPES": _DEFS,
    "Entity": _DEFS,
    "FeatureSelection": _DEFS,
    "FeatureService": _DEFS,
    "FeatureView": _DEFS,
    "OnDemandFeatureView": _DEFS,
    "Source": _DEFS,
    "parquet": _DEFS,
    "parse_ttl": _DEFS,
    "sql": _DEFS,
    "load_definitions": "plinth.features.files",
    "ApplyResult": _REG,
    "Change": _REG,
    "Plan": _REG,
    "PlanError": _REG,
    "apply": _REG,
    "list_definitions": _REG,
    "plan": _REG,
    "show": _REG,
    "OnlineReader": "plinth.features.online",
    "get_online_features": "plinth.features.online",
    "TrainingSet": "plinth.features.training",
    "ViewData": "plinth.features.offline",
    "get_training_set": "plinth.features.training",
    "point_in_time_join": "plinth.features.offline",
}

__all__ = [
    "FEATURE_TYPES",
    "ApplyResult",
    "Change",
    "Entity",
    "FeatureSelection",
    "FeatureService",
    "FeatureView",
    "OnDemandFeatureView",
    "OnlineReader",
    "Plan",
    "PlanError",
    "Source",
    "TrainingSet",
    "ViewData",
    "apply",
    "get_online_features",
    "get_training_set",
    "list_definitions",
    "load_definitions",
    "materialize",
    "parquet",
    "parse_ttl",
    "plan",
    "point_in_time_join",
    "push",
    "show",
    "skew",
    "sql",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
