"""``plinth deploy``: a deployment YAML as infrastructure code (Dockerfile, Kubernetes, compose)."""

from __future__ import annotations

from pathlib import Path

import click

from plinth.cli._common import echo_json, json_option


@click.group(epilog="Example: plinth deploy export deployment.yaml --target kubernetes")
def deploy() -> None:
    """Turn a deployment YAML into files that run it elsewhere."""


@deploy.command(
    epilog="\b\nExamples:\n"
    "  plinth deploy export deployment.yaml --target kubernetes -o deploy-delays\n"
    "  plinth deploy export deployment.yaml --target compose"
)
@click.argument("spec", metavar="DEPLOYMENT.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--target",
    type=click.Choice(["kubernetes", "compose"]),
    required=True,
    help="Kubernetes manifests (Deployment, Service, HPA, ConfigMap) or a compose file.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write to. Default: ./deploy-<name>.",
)
@click.option("--image", help="Image the manifests run. Default: <name>:<model>-v<version>.")
@click.option(
    "--replicas",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Replicas, and the autoscaler's minimum.",
)
@click.option(
    "--allow-embedded",
    is_flag=True,
    help="Export even when the project's stores are SQLite or a local folder (mount them).",
)
@json_option
def export(
    spec: Path,
    target: str,
    output: Path | None,
    image: str | None,
    replicas: int,
    allow_embedded: bool,
    as_json: bool,
) -> None:
    """Write a Dockerfile and Kubernetes manifests or a compose file for a deployment.

    The image installs what serving the model needs (its flavor's packages and
    plinth[serve]), pinned as its run recorded them. Store URIs are read from a Secret
    (Kubernetes) or plinth.env (compose), never written; a project on SQLite or a local
    artifact folder is refused unless --allow-embedded."""
    from plinth.context import Context
    from plinth.serving.export import dns_name, export_deployment, read_name

    folder = output or Path(f"deploy-{dns_name(read_name(spec))}")
    with Context.open() as ctx:
        written = export_deployment(
            spec,
            target,
            folder,
            image=image,
            replicas=replicas,
            allow_embedded=allow_embedded,
            ctx=ctx,
        )
    if as_json:
        echo_json({"target": target, "output": str(folder), "files": [str(p) for p in written]})
        return
    for path in written:
        click.echo(str(path))
    click.echo(f"Wrote {len(written)} files to {folder} for {target}.", err=True)
