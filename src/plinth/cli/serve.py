"""``plinth serve DEPLOYMENT.yaml``: record the deployment version and serve it on uvicorn.

A thin layer over :mod:`plinth.serving` (spec, app). With ``--workers`` above 1 uvicorn
starts that many processes, each building the app from the spec path it finds in the
environment; with ``--preload`` the models are loaded once and the workers forked
(:mod:`plinth.serving.prefork`), sharing that memory.
"""

from __future__ import annotations

import click


@click.command(
    epilog="Example: plinth serve deployment.yaml --port 8000  "
    "(then: curl -d '{\"records\": [{...}]}' localhost:8000/v1/predict)"
)
@click.argument("deployment", type=click.Path(dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Processes."
)
@click.option(
    "--preload",
    is_flag=True,
    help="Import and load the model once, then fork the workers: they share that memory.",
)
def serve(deployment: str, host: str, port: int, workers: int, preload: bool) -> None:
    """Serve a deployment: POST /v1/predict, GET /v1/model, /health, /ready, /metrics."""
    import os
    from pathlib import Path

    # Arrow's system allocator hands the prediction log's freed batches back to the OS
    # (its default pool keeps them: resident memory grows to the largest batch). Set
    # before anything allocates through Arrow; an explicit choice in the environment wins.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

    from plinth._extras import require
    from plinth.context import Context
    from plinth.serving.spec import DeploymentSpec, save_deployment

    for module in ("starlette", "orjson"):
        require(module, feature="plinth serve")
    uvicorn = require("uvicorn", feature="plinth serve")

    spec = DeploymentSpec.load(deployment)
    with Context.open() as ctx:
        version = save_deployment(spec, ctx)
    click.echo(f"deployment {version.ref} ({spec.model}) on http://{host}:{port}", err=True)
    if preload:
        from plinth.serving.prefork import serve_preloaded

        raise SystemExit(serve_preloaded(spec, host=host, port=port, workers=workers))
    if workers > 1:
        os.environ["_PLINTH_SERVE_SPEC"] = str(Path(deployment).resolve())
        uvicorn.run(
            "plinth.serving.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
        return
    from plinth.serving.app import create_app

    ctx = Context.open()
    try:
        app = create_app(spec, ctx=ctx, deployment=version)
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        ctx.close()
