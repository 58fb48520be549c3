"""Monitoring: is the data a model sees still the data it was trained on?

Owns::

    drift.py     drift(): one vectorised test per column (KS, Wasserstein, PSI,
                 chi-squared, Jensen-Shannon, unseen categories), Benjamini-Hochberg
                 across columns, DriftReport and ColumnDrift
    _stats.py    the statistics as pure functions over sorted samples and counts
    _sides.py    a table or a stored profile read column by column for them
    report.py    the self-contained HTML report (inline SVG, no rows)

::

    report = plinth.monitoring.drift(train_df, current_df)   # or a stored TableProfile
    report.drifted, report.share, report.columns[0]          # ranked, drifted first
    report.to_html("drift-report.html")

May import the plinth core, ``plinth.profiles`` (stored references are profiles) and
``plinth.versioning``'s public functions. Nothing is imported until a name is used:
numpy, pyarrow and scipy load with the first comparison.
"""

from plinth._lazy import lazy_attributes

# ``drift`` names both a module and its function. Bound here, on import (drift.py imports
# nothing heavy at top level), so that a later ``import plinth.monitoring.drift`` cannot
# leave the module where the function should be. Reach the module's other names with
# ``from plinth.monitoring.drift import ...`` (``import ... as`` would get the function).
from plinth.monitoring.drift import ColumnDrift, DriftReport, drift

# Further public names, loaded on first use: name -> defining module.
_LAZY: dict[str, str] = {}

__all__ = [
    "ColumnDrift",
    "DriftReport",
    "drift",
]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
