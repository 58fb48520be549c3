"""scikit-learn models as skops files, loaded only when every type in them is allow-listed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plinth._extras import require
from plinth.errors import UntrustedModelError
from plinth.registry.flavors._skops import is_default_trusted, own_checks, skops_io
from plinth.registry.flavors.base import FlavorInfo, PlinthModel

FILE = "model.skops"

#: Types skops does not trust by default that plinth lets it load: scikit-learn's own
#: fitted internals (trees, tree predictors, neighbour indexes, optimizers) and numpy dtypes.
#: Anything else in a skops file needs ``trusted=True``. Extend with care, one name at a time.
#: ``functools.partial`` is safe to admit because skops lists the function it wraps as a
#: type of its own: only the allow-listed ``check_array`` (which HistGradientBoosting's
#: categorical preprocessing wraps) gets through.
ALLOWED_TYPES: frozenset[str] = frozenset(
    {
        "functools.partial",
        "numpy.dtype",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.tree._tree.Tree",
        "sklearn.utils.validation.check_array",
    }
)


def save(model: Any, folder: Path) -> FlavorInfo:
    sio = skops_io()
    sklearn = require("sklearn", feature="saving scikit-learn models")
    sio.dump(model, folder / FILE)
    return FlavorInfo(
        "sklearn",
        (FILE,),
        needs_pickle=False,
        loader="skops.io.load",
        extra={
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "sklearn_version": sklearn.__version__,
        },
    )


def _refused(found: list[str]) -> list[str]:
    """The types of ``found`` (those skops' audit did not pass) that neither skops' default
    list of estimators nor :data:`ALLOWED_TYPES` covers."""
    return sorted(n for n in found if n not in ALLOWED_TYPES and not is_default_trusted(n))


def untrusted_types(path: Path) -> list[str]:
    """Types in a skops file that neither skops' defaults nor :data:`ALLOWED_TYPES` cover."""
    sio = skops_io()
    with own_checks():
        return _refused(sio.get_untrusted_types(data=path.read_bytes()))


def load(folder: Path, info: FlavorInfo, *, trusted: bool) -> PlinthModel:
    sio = skops_io()
    data = (folder / FILE).read_bytes()  # read once: what is audited is what is loaded
    with own_checks():
        found: list[str] = sio.get_untrusted_types(data=data)
        refused = _refused(found)
        if refused and not trusted:
            names = ", ".join(refused)
            raise UntrustedModelError(
                f"the scikit-learn model holds types outside plinth's allow-list: {names}",
                hint="loading them can run their code; pass trusted=True only if you trust "
                "whoever logged the model",
            )
        model = sio.loads(data, trusted=found)
    return PlinthModel("sklearn", model)
