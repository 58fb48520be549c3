"""Logging a model from a run into the registry, and loading a registered version back.

``log_model`` saves the model with its flavor, stores every file as a blob and as a run
artifact under ``models/<name>/``, writes the model manifest (files, flavor, signature) as
one more blob, registers a new version carrying the run id, the run's environment and its
latest metrics, and records ``run —produced→ model_version``. The datasets the run used
reach the version through that edge (lineage walks upstream through the run)::

    with plinth.start_run() as run:
        mv = run.log_model(model, name="delays", input_example=df.head())
    model = load_model("delays@champion")
    model.predict(df)
"""

from __future__ import annotations

import json
import logging
import mimetypes
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from plinth.entities import RecordRef
from plinth.errors import IntegrityError, InvalidPathError, UsageError
from plinth.guards.paths import safe_join
from plinth.registry.flavors import FlavorInfo, PlinthModel, save_model
from plinth.registry.flavors import load_model as load_flavor
from plinth.registry.flavors.signature import Signature, infer_signature

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import ModelVersion

__all__ = ["MANIFEST_FORMAT", "ModelManifest", "load_model", "log_model"]

log = logging.getLogger("plinth.registry")


class RunHandle(Protocol):
    """What ``log_model`` needs of a run: ``plinth.tracking``'s ActiveRun is one. Typed by
    shape so that the registry, below tracking, never imports it."""

    @property
    def id(self) -> str: ...

    @property
    def context(self) -> Context: ...

    def flush(self) -> object: ...


MANIFEST_FORMAT = "plinth.model/1"
#: The manifest's name among the run's artifacts, next to the model's files.
MANIFEST_NAME = "plinth-model.json"


class ModelManifest:
    """A logged model's files (path -> digest, size), flavor and signature, as one blob."""

    def __init__(
        self,
        name: str,
        info: FlavorInfo,
        files: Mapping[str, tuple[str, int]],
        signature: Signature | None,
    ) -> None:
        self.name = name
        self.info = info
        self.files = dict(files)
        self.signature = signature

    def to_bytes(self) -> bytes:
        doc = {
            "format": MANIFEST_FORMAT,
            "name": self.name,
            "flavor": self.info.to_dict(),
            "files": [[path, *self.files[path]] for path in sorted(self.files)],
            "signature": None if self.signature is None else self.signature.to_dict(),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, *, where: str = "model manifest") -> ModelManifest:
        try:
            doc = json.loads(data)
            if doc.get("format") != MANIFEST_FORMAT:
                raise ValueError(f"unknown format {doc.get('format')!r}")
            files = {str(p): (str(d), int(s)) for p, d, s in doc["files"]}
            signature = doc.get("signature")
            return cls(
                str(doc["name"]),
                FlavorInfo.from_dict(doc["flavor"]),
                files,
                None if signature is None else Signature.from_dict(signature),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise IntegrityError(f"{where} is not a plinth model manifest: {exc}") from None


def _temp_folder(ctx: Context) -> Path:
    folder = ctx.settings.data_dir / "tmp" / f"model-{uuid.uuid4().hex}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir(mode=0o700)  # owner-only: nobody else can plant a symlink in it
    return folder


def _check_paths(folder: Path, manifest: ModelManifest, where: str) -> None:
    """Check every manifest path against ``folder`` before anything is written.

    The manifest is a record someone else may have written: a path that would leave the
    folder (``..``, absolute, encoded, through a symlink) refuses the whole model.
    """
    try:
        for path in manifest.files:
            safe_join(folder, path)
    except InvalidPathError as exc:
        raise InvalidPathError(
            f"{where} lists a file that would be written outside the model folder: {exc.message}",
            hint="the model version's record was altered or written by a faulty client; "
            "do not load it, and re-log the model from its run",
            field="files",
        ) from None
    missing = sorted(set(manifest.info.files) - set(manifest.files))
    if missing:
        raise IntegrityError(
            f"{where}: its flavor needs {missing[0]!r}, which its file list does not name",
            hint="the model version's record was altered; re-log the model from its run",
        )


def _predict_example(model: Any, input_example: Any) -> Any:
    predict = getattr(model, "predict", None)
    if predict is None or input_example is None:
        return None
    try:
        return predict(input_example)
    except Exception as exc:  # the output is optional; the inputs are what serving checks
        log.info("plinth: no output signature (predict on the example failed: %s)", exc)
        return None


def _signature(
    input_example: Any, output: Any, signature: Signature | Mapping[str, Any] | None
) -> Signature | None:
    if isinstance(signature, Signature):
        return signature
    if signature is not None:
        return Signature.from_dict(signature)
    if input_example is None:
        return None
    try:
        return infer_signature(input_example, output)
    except UsageError:
        if output is None:
            raise
        return infer_signature(input_example)


def _quantiles(values: Any, source: str) -> dict[str, Any] | None:
    """Deciles of numeric predictions, for serving's histogram buckets; None otherwise."""
    import numpy as np

    try:
        array = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return None  # class names: counted per class, not bucketed
    array = array[np.isfinite(array)]
    if array.size == 0:
        return None
    deciles = np.quantile(array, np.linspace(0.0, 1.0, 11))
    return {"quantiles": deciles.tolist(), "rows": int(array.size), "source": source}


def _prediction_quantiles(ctx: Context, run_id: str, example_output: Any) -> dict[str, Any] | None:
    """From the run's logged predictions (``run.log_predictions``; ``holdout`` first), else
    from the model's predictions on its input example."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    logged = [
        a
        for a in ctx.ledger.artifacts.list(RecordRef("run", run_id))
        if a.path.startswith("predictions/") and a.path.endswith(".parquet")
    ]
    logged.sort(key=lambda a: a.path != "predictions/holdout.parquet")
    for artifact in logged:
        try:
            parquet = pq.ParquetFile(pa.BufferReader(ctx.blobs.read_bytes(artifact.digest)))
            if "y_pred" not in parquet.schema_arrow.names:
                continue
            column = parquet.read(columns=["y_pred"]).column("y_pred")
        except (OSError, pa.ArrowException):
            continue  # not ours to judge here: the model is logged without quantiles from it
        found = _quantiles(column.to_numpy(zero_copy_only=False), "predictions")
        if found is not None:
            return found
    return None if example_output is None else _quantiles(example_output, "input_example")


def log_model(
    run: RunHandle,
    model: Any,
    name: str,
    *,
    input_example: Any = None,
    signature: Signature | Mapping[str, Any] | None = None,
    flavor: str | None = None,
    description: str | None = None,
) -> ModelVersion:
    """Save ``model`` with its flavor, log its files on ``run`` and register a new version."""
    from plinth.ledger.model_rows import check_model_name

    check_model_name(name)
    ctx = run.context
    output = _predict_example(model, input_example)
    sig = _signature(input_example, output, signature)
    folder = _temp_folder(ctx)
    try:
        info = save_model(model, folder, flavor=flavor)
        refs = ctx.blobs.put_files([safe_join(folder, path) for path in info.files])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    files = {path: (ref.digest, ref.size) for path, ref in zip(info.files, refs, strict=True)}
    manifest = ModelManifest(name, info, files, sig)
    manifest_ref = ctx.blobs.put_bytes(manifest.to_bytes())
    prefix = f"models/{name}"
    items = [
        (f"{prefix}/{path}", digest, size, mimetypes.guess_type(path)[0])
        for path, (digest, size) in files.items()
    ]
    items.append(
        (f"{prefix}/{MANIFEST_NAME}", manifest_ref.digest, manifest_ref.size, "application/json")
    )
    run_ref = RecordRef("run", run.id)
    ctx.ledger.artifacts.record_many(run_ref, items)
    run.flush()  # the metrics snapshot must hold what the run logged so far
    record = ctx.ledger.runs.get_run(run.id)
    models = ctx.ledger.models
    stored = None if sig is None else sig.to_dict()
    quantiles = None if stored is None else _prediction_quantiles(ctx, run.id, output)
    if stored is not None and quantiles is not None:
        # beside the signature: no migration, and serving reads it with the version
        stored["prediction_quantiles"] = quantiles
    version = models.register(
        models.ensure(ctx.project.id, name),
        flavor=info.flavor,
        manifest_digest=manifest_ref.digest,
        run_id=run.id,
        signature=stored,
        environment_id=record.environment_id,
        metrics=ctx.ledger.runs.latest_metrics(run.id),
        trusted_digests=[digest for digest, _ in files.values()] if info.needs_pickle else [],
        description=description,
    )
    ctx.ledger.lineage.add(run_ref, RecordRef("model_version", version.id), "produced")
    return version


def _resolve(ctx: Context, ref: str | ModelVersion) -> ModelVersion:
    if not isinstance(ref, str):
        return ref
    from plinth.refs import parse_ref

    parsed = parse_ref(ref, what="model")
    model = ctx.ledger.models.get(ctx.project.id, parsed.name)
    return ctx.ledger.models.resolve(model, parsed.spec)


def load_model(
    ref: str | ModelVersion, *, trusted: bool = False, ctx: Context | None = None
) -> PlinthModel:
    """Load a registered version (``"NAME"``, ``"NAME@3"``, ``"NAME@champion"`` or a
    ModelVersion); files are fetched verified and pickled ones need ``trusted=True``."""
    from plinth.context import resolve_context

    ctx = resolve_context(ctx)
    version = _resolve(ctx, ref)
    where = f"the manifest of {version.ref}"
    manifest = ModelManifest.from_bytes(ctx.blobs.read_bytes(version.manifest_digest), where=where)
    folder = _temp_folder(ctx)
    try:
        _check_paths(folder, manifest, where)
        for path, (digest, size) in manifest.files.items():
            # Joined again just before the write; copy_to renames a temp file onto the
            # target, replacing a symlink there rather than writing through it.
            ctx.blobs.copy_to(digest, safe_join(folder, path), size=size)
        loaded = load_flavor(
            folder,
            manifest.info,
            trusted=trusted,
            trusted_digests=version.trusted_digests,
            digests={path: digest for path, (digest, _) in manifest.files.items()},
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    loaded.signature = manifest.signature
    return loaded
