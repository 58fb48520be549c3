"""Creating a project: ``plinth init`` writes plinth.yaml only after every store opened."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plinth.context import Context
from plinth.errors import ProjectExistsError
from plinth.settings import CONFIG_FILE, SETTINGS, load_settings, redact

__all__ = ["InitResult", "init_project"]


@dataclass(frozen=True)
class InitResult:
    config_file: Path
    project: str
    metadata: str
    artifacts: str
    migrations_applied: list[str]


def _render(values: dict[str, Any]) -> str:
    lines = [
        "# plinth project settings (docs/settings.md documents each one).",
        "# PLINTH_<NAME> environment variables override this file. Never put secrets here:",
        "# passwords and keys come from the environment (PGPASSWORD, AWS_SECRET_ACCESS_KEY, ...).",
    ]
    for setting in SETTINGS:
        if setting.name in values:
            lines.append(f"{setting.name}: {values[setting.name]}")
        elif setting.default is not None:
            lines.append(f"# {setting.name}: {setting.default}")
    return "\n".join(lines) + "\n"


def init_project(
    path: Path | str | None = None, *, force: bool = False, **values: Any
) -> InitResult:
    """Create plinth.yaml in ``path`` and the stores it names (embedded ones by default).

    Refuses to overwrite an existing plinth.yaml unless ``force``; never touches an existing
    ledger or artifact store beyond migrating it. Settings passed as keywords are written.

    Example::

        init_project("flights", project="flights", metadata="postgresql+psycopg://me@db/ml")
    """
    root = Path(path) if path is not None else Path.cwd()
    config_file = root / CONFIG_FILE
    if config_file.exists() and not force:
        raise ProjectExistsError(f"{config_file} already exists")
    values = {k: v for k, v in values.items() if v is not None}
    values.setdefault("project", root.resolve().name or "default")
    root.mkdir(parents=True, exist_ok=True)
    settings = load_settings(root, overrides=values, discover=False)

    data_dir = settings.data_dir
    existed = data_dir.exists()
    # Open everything before writing the file: a bad URI leaves no half-made project.
    with Context(settings) as ctx:
        applied = ctx.ledger.migrations_applied
        ctx.project  # noqa: B018 - creates the project record
        ctx.blobs.store.check()
        artifacts = ctx.blobs.store.describe()
    if not existed and data_dir.is_dir():  # plinth's local stores are one person's
        data_dir.chmod(0o700)
    if data_dir.is_dir() and not (data_dir / ".gitignore").exists():
        (data_dir / ".gitignore").write_text("# plinth's local stores; not for git\n*\n")

    tmp = config_file.with_name(f".{CONFIG_FILE}.{os.getpid()}.tmp")
    tmp.write_text(_render(values), encoding="utf-8")
    os.replace(tmp, config_file)
    return InitResult(
        config_file=config_file,
        project=settings.project_name,
        metadata=redact(settings.metadata),
        artifacts=artifacts,
        migrations_applied=list(applied),
    )
