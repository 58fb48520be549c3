"""Projects and their experiments: get-or-create, safe under concurrent callers."""

from __future__ import annotations

import sqlalchemy as sa

from plinth.entities import Experiment, Project
from plinth.errors import NotFoundError
from plinth.ids import new_id
from plinth.ledger._common import Db, check_text, upsert
from plinth.ledger.record_rows import experiment_of as _experiment
from plinth.ledger.record_rows import project_of as _project
from plinth.ledger.tables import experiments, projects

__all__ = ["ProjectStore"]


class ProjectStore:
    """``ledger.projects``: projects by name, experiments by project."""

    def __init__(self, db: Db) -> None:
        self._db = db
        # Experiments are never renamed or deleted: a found one stays valid for this process.
        self._experiments: dict[tuple[str, str], Experiment] = {}

    def ensure_project(self, name: str) -> Project:
        """The project called ``name``, created if it does not exist yet."""
        check_text(name, "project name")
        with self._db.read() as conn:
            row = (
                conn.execute(sa.select(projects).where(projects.c.name == name)).mappings().first()
            )
        if row is not None:
            return _project(row)
        with self._db.write() as conn:
            # ON CONFLICT DO NOTHING: a concurrent creator wins and we read its row.
            conn.execute(
                upsert(conn, projects)
                .values(id=new_id(), name=name, **self._db.stamp())
                .on_conflict_do_nothing()
            )
            row = conn.execute(sa.select(projects).where(projects.c.name == name)).mappings().one()
        return _project(row)

    def get_project(self, name: str) -> Project:
        """The project called ``name``; NotFoundError if there is none."""
        with self._db.read() as conn:
            row = (
                conn.execute(sa.select(projects).where(projects.c.name == name)).mappings().first()
            )
        if row is None:
            raise NotFoundError(
                f"no project named {name!r} in the ledger",
                hint="check the 'project' setting, or create it with ensure_project",
            )
        return _project(row)

    def ensure_experiment(self, project_id: str, name: str) -> Experiment:
        """The experiment ``name`` of a project, created if it does not exist yet."""
        cached = self._experiments.get((project_id, name))
        if cached is not None:
            return cached
        check_text(name, "experiment name")
        where = (experiments.c.project_id == project_id) & (experiments.c.name == name)
        with self._db.read() as conn:
            row = conn.execute(sa.select(experiments).where(where)).mappings().first()
        if row is None:
            row = self._create_experiment(project_id, name, where)
        experiment = self._experiments[(project_id, name)] = _experiment(row)
        return experiment

    def _create_experiment(
        self, project_id: str, name: str, where: sa.ColumnElement[bool]
    ) -> sa.RowMapping:
        with self._db.write() as conn:
            found = conn.execute(sa.select(projects.c.id).where(projects.c.id == project_id))
            if found.first() is None:
                raise NotFoundError(f"no project with id {project_id!r} in the ledger")
            conn.execute(
                upsert(conn, experiments)
                .values(id=new_id(), project_id=project_id, name=name, **self._db.stamp())
                .on_conflict_do_nothing()
            )
            return conn.execute(sa.select(experiments).where(where)).mappings().one()

    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with this id; NotFoundError if there is none."""
        with self._db.read() as conn:
            row = (
                conn.execute(sa.select(experiments).where(experiments.c.id == experiment_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"no experiment with id {experiment_id!r} in the ledger")
        return _experiment(row)

    def list_experiments(self, project_id: str) -> list[Experiment]:
        """The experiments of a project, by name."""
        query = (
            sa.select(experiments)
            .where(experiments.c.project_id == project_id)
            .order_by(experiments.c.name)
        )
        with self._db.read() as conn:
            return [_experiment(row) for row in conn.execute(query).mappings()]
