"""Blob storage: the only code that touches artifact folders and object stores.

Owns the :class:`BlobStore` interface (bytes under '/'-separated keys) with its local,
in-memory and S3 backends chosen by URI scheme (:func:`open_blob_store`, plus plugins from
the ``plinth.blob_stores`` entry point group), content addressing on top of any of them
(:class:`ContentStore`, BLAKE3 digests, verified reads) and the rules for logical artifact
paths (:func:`normalize_artifact_path`, :func:`safe_join`).

May import: the standard library, ``blake3``, :mod:`plinth.errors`, :mod:`plinth.settings`
and :mod:`plinth.guards.paths`; ``boto3``/``botocore`` only inside :mod:`plinth.storage.s3`, when an
``s3://`` store is opened. Nothing here imports the ledger, the pillars or the CLI.

    BlobStore  (exists, touch, stage -> StagedBlob, open, delete, list -> BlobInfo, location,
                check, sync)
    ├── LocalBlobStore    a folder, or file:///PATH
    ├── MemoryBlobStore   memory://NAME, shared per process (tests)
    └── S3BlobStore       s3://BUCKET/PREFIX   (plinth.storage.s3, needs the 's3' extra)
    ContentStore(BlobStore)  put_file/put_files/put_stream/put_bytes -> BlobRef, sync,
                             open/read_bytes/copy_to

The online feature store's interface and backends live beside them, imported by module
(not re-exported here): :mod:`plinth.storage.online` (``OnlineStore``: write, read with the
TTL, delete_view, check, describe, close; ``open_online_store`` by URI scheme),
:mod:`plinth.storage.online_sqlite` (``sqlite:///PATH``, the default) and
:mod:`plinth.storage.online_redis` (``redis://``, needs the 'redis' extra; ``redis`` is
imported only there, when such a store is opened).
"""

from plinth.guards.paths import normalize_artifact_path, safe_join
from plinth.storage.blobs import BlobInfo, BlobStore, StagedBlob, open_blob_store
from plinth.storage.content import (
    BlobRef,
    ContentStore,
    StoredBlob,
    blob_key,
    check_digest,
    hash_file,
)
from plinth.storage.local import LocalBlobStore
from plinth.storage.memory import MemoryBlobStore

__all__ = [
    "BlobInfo",
    "BlobRef",
    "BlobStore",
    "ContentStore",
    "LocalBlobStore",
    "MemoryBlobStore",
    "StagedBlob",
    "StoredBlob",
    "blob_key",
    "check_digest",
    "hash_file",
    "normalize_artifact_path",
    "open_blob_store",
    "safe_join",
]
