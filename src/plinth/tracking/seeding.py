"""``plinth.seed_everything``: one call seeds every random generator a run is likely to use."""

from __future__ import annotations

import os
import random
import sys

__all__ = ["pending_seed", "seed_everything"]

_pending: list[int] = []


def seed_everything(seed: int) -> int:
    """Seed ``random``, NumPy's global generator and torch (when imported), and record it.

    The seed is logged as the param ``seed`` of the active run, or of the next run started
    in this process. Import torch before calling this so that it is seeded too.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        from plinth.errors import UsageError

        raise UsageError(f"seed must be an integer in [0, 2**32), got {seed!r}", field="seed")
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)  # for subprocesses; this one is already hashed
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    from plinth.tracking.runs import active_run

    run = active_run()
    if run is not None:
        run.log_param("seed", seed)
    else:
        _pending[:] = [seed]
    return seed


def pending_seed() -> int | None:
    """The seed set before any run was active, consumed by the next ``start_run``."""
    return _pending.pop() if _pending else None
