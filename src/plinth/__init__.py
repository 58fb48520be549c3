"""plinth: one ledger for versioning, monitoring, testing and automating ML.

The object model::

    Context ── settings (plinth.yaml < PLINTH_* env)
       ├── ledger  (SQLite | PostgreSQL)           records, linked by lineage edges
       │     project ─< experiment ─< run ─< params, metrics, tags
       │                                  run ─── environment (stored once per digest)
       │     artifact (owner record, logical path) ──> blob digest
       │     lineage_edge (src record ─relation→ dst record)
       └── blobs   (local folder | S3 | memory)    content-addressed by BLAKE3

Importing plinth is cheap: backends (SQLAlchemy, boto3, ...) load on first use.

Example::

    import plinth
    ctx = plinth.init()                 # finds plinth.yaml upward, or embedded default
    ref = ctx.blobs.put_bytes(b"hello")
    ctx.blobs.read_bytes(ref.digest)
"""

from plinth._version import __version__
from plinth.context import Context, current, init
from plinth.errors import PlinthError
from plinth.settings import Settings, load_settings

__all__ = [
    "Context",
    "PlinthError",
    "Settings",
    "__version__",
    "current",
    "init",
    "load_settings",
]
