"""Fixtures shared by every test folder: a clean environment, a project folder, the CLI,
a PostgreSQL schema of one's own and a real S3-compatible server (moto).

In the folders of ``BOTH_MODES`` every test that uses ``project_dir`` or ``project`` runs
twice: ``[embedded]`` (the local SQLite ledger and artifacts folder) and ``[remote]`` (a
project of its own on a live team server, one server per xdist worker), so the Python API
and the CLI are tested over HTTP too. A test about embedded internals on purpose carries
``@pytest.mark.embedded_only("why")`` and runs embedded only.
"""

from __future__ import annotations

import getpass
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

import plinth
from plinth.cli.main import main
from plinth.context import Context
from plinth.pipelines.preload import THREAD_VARIABLES
from plinth.testing.s3server import TEST_CREDENTIALS, create_bucket, moto_s3_server

if TYPE_CHECKING:
    from plinth.testing.server import ServerHandle

PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
#: Test folders whose project tests run embedded and against a live team server.
BOTH_MODES = frozenset(
    {
        "tracking",
        "datasets",
        "registry",
        "monitoring",
        # The CLI's own tests of the runs and data commands.
        "cli/test_runs.py",
        "cli/test_runs_artifacts.py",
        "cli/test_data.py",
    }
)
_TESTS = Path(__file__).parent

# Three xdist workers on two cores: a native math library's thread per core in each worker
# (and in the processes it starts) spin-waits against the others. HistGradientBoosting's
# permutation importance in the demo took 18.9 s of CPU with two OpenMP threads on a busy
# host, 1.2 s with one. Read when those libraries first load (no test module imports them
# before this file); a value set by the caller wins.
for _variable in THREAD_VARIABLES:
    os.environ.setdefault(_variable, "1")
#: The embedded ledger and artifacts in .plinth/: a remote-mode test never makes them.
_EMBEDDED_STORES = frozenset({"plinth.db", "artifacts"})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Runs a test of a ``BOTH_MODES`` folder that uses a project once per mode (``[embedded]``,
    ``[remote]``), or embedded only when marked ``embedded_only``."""
    if "plinth_mode" not in metafunc.fixturenames:
        return
    where = metafunc.definition.path.relative_to(_TESTS)
    if where.parts[0] not in BOTH_MODES and where.as_posix() not in BOTH_MODES:
        return
    embedded_only = metafunc.definition.get_closest_marker("embedded_only") is not None
    metafunc.parametrize("plinth_mode", ["embedded"] if embedded_only else ["embedded", "remote"])


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PLINTH_* variable of the developer's shell leaks into a test; output is 200 wide."""
    for name in list(os.environ):
        if name.startswith("PLINTH_"):
            monkeypatch.delenv(name)
    # Rich tables wrap to the terminal; a pytest-xdist worker has none (80 columns).
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture(autouse=True)
def _no_pending_seed() -> Iterator[None]:
    """A seed set while no run is active waits for the next ``start_run`` of the process:
    a test's, never the next test's (it would gain a ``seed`` param)."""
    yield
    from plinth.tracking.seeding import pending_seed

    pending_seed()


@pytest.fixture
def plinth_mode() -> str:
    """Where a test's project lives: ``embedded`` here; ``BOTH_MODES`` folders add ``remote``."""
    return "embedded"


class TeamServer:
    """A live team server for remote-mode tests, with the server admin's API client."""

    def __init__(self, handle: ServerHandle) -> None:
        import httpx

        self.handle = handle
        self.url = handle.url
        self._admin = httpx.Client(
            base_url=handle.url,
            headers={"Authorization": f"Bearer {handle.admin_token}"},
            timeout=30.0,
        )
        #: Per user, one token without a project scope: it reaches the user's projects.
        self._tokens: dict[str, str] = {}

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = self._admin.request(method, path, json=body)
        if answer.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {answer.status_code}: {answer.text}")
        return answer.json() if answer.content else None

    def project(self, user: str, role: str) -> tuple[str, str]:
        """A fresh project (its own ledger and blobs) where ``user`` holds ``role``, and a
        token of ``user``: its name and the token."""
        name = f"p{uuid.uuid4().hex[:16]}"
        self._call("POST", "/api/v1/admin/projects", {"name": name})
        if user not in self._tokens:
            self._call("POST", "/api/v1/admin/users", {"name": user, "password": None})
            created = self._call("POST", "/api/v1/admin/tokens", {"user": user, "scopes": []})
            self._tokens[user] = str(created["token"])
        self._call("PUT", f"/api/v1/projects/{name}/members/{user}", {"role": role})
        return name, self._tokens[user]

    def close(self) -> None:
        self._admin.close()
        self.handle.stop()


@pytest.fixture(scope="session")
def team_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamServer]:
    """A live team server in a thread, one per session (per xdist worker); each remote test
    gets a project of its own on it. Token creation is not rate limited here."""
    pytest.importorskip("starlette", reason="the 'server' extra is not installed")
    from plinth.testing.server import start_server

    server = TeamServer(
        start_server(tmp_path_factory.mktemp("team") / "server", token_limit=100_000)
    )
    yield server
    server.close()


@pytest.fixture
def project_dir(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    plinth_mode: str,
    request: pytest.FixtureRequest,
) -> Iterator[Path]:
    """An empty folder that is the working directory for the test.

    Remote mode: the folder is named after a fresh project on the team server, and
    PLINTH_SERVER and PLINTH_TOKEN (a token of the local user, with the ``write`` role in
    the project, or the user and role a ``remote_token(role=, user=)`` marker asks for)
    are set, so ``plinth init`` and ``plinth.init(folder)`` both open that project; and
    the test fails if it made a local ledger or artifacts folder all the same."""
    name = "proj"
    if plinth_mode == "remote":
        server: TeamServer = request.getfixturevalue("team_server")
        wanted = request.node.get_closest_marker("remote_token")
        options = wanted.kwargs if wanted else {}
        user, role = options.get("user") or getpass.getuser(), options.get("role", "write")
        name, token = server.project(user, role)
        monkeypatch.setenv("PLINTH_SERVER", server.url)
        monkeypatch.setenv("PLINTH_TOKEN", token)
    folder = tmp_path / name
    folder.mkdir()
    monkeypatch.chdir(folder)
    yield folder
    if plinth_mode == "remote":
        local = [p.name for p in (folder / ".plinth").glob("*") if p.name in _EMBEDDED_STORES]
        assert local == [], f"a remote-mode test made local stores: {local}"


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """A local Ray cluster of 2 CPUs, one per session (per xdist worker), started on first
    use (~7 s) and shared by the ray features engine and the ray pipeline executor tests."""
    ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def migrated_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded ledger migrated once per session (a project ``proj``, nothing else).

    Migrating a fresh SQLite database costs ~60 ms; the ``project`` fixture copies this one
    instead. Tests of migrating itself open their own databases."""
    folder = tmp_path_factory.mktemp("template") / "proj"
    folder.mkdir()
    ctx = plinth.init(folder, system_metrics=False)
    assert ctx.project.name == "proj"
    ctx.close()
    ledger = folder / ".plinth" / "plinth.db"
    assert ledger.is_file()
    assert not ledger.with_name("plinth.db-wal").exists(), "closed ledgers are checkpointed"
    return ledger


@pytest.fixture
def project(
    project_dir: Path, plinth_mode: str, request: pytest.FixtureRequest
) -> Iterator[Context]:
    """A fresh project in ``project_dir``, made current for the API (system metrics off unless
    a test turns them on); any run a test leaves active is ended. Embedded: a copy of a
    migrated ledger; remote: a plinth.yaml naming the server project (see ``project_dir``)."""
    from plinth.tracking.runs import active_run

    if plinth_mode == "remote":
        server = os.environ["PLINTH_SERVER"]
        (project_dir / "plinth.yaml").write_text(
            f"project: {project_dir.name}\nserver: {server}\n", encoding="utf-8"
        )
        ctx = plinth.init(project_dir, system_metrics=False)
    else:
        migrated: Path = request.getfixturevalue("migrated_ledger")
        (project_dir / ".plinth").mkdir()
        shutil.copyfile(migrated, project_dir / ".plinth" / "plinth.db")
        ctx = plinth.init(project_dir, system_metrics=False)
        assert ctx.ledger.migrations_applied == ()
    yield ctx
    while (run := active_run()) is not None:
        run.end("finished")
    ctx.close()


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run the plinth CLI in-process: ``cli("init", "--json")`` -> Result(code, out, err)."""

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def pg_engine() -> Iterator[sa.Engine]:
    """A plain engine on the test database, for creating and inspecting schemas."""
    engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 5})
    yield engine
    engine.dispose()


@pytest.fixture
def pg_schema(pg_engine: sa.Engine) -> Iterator[str]:
    """A fresh, empty schema, dropped (CASCADE) after the test."""
    name = f"t_{uuid.uuid4().hex}"
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    yield name
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The endpoint URL of a moto S3 server, started once per test session."""
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fake AWS credentials in the environment, real ones hidden; restored after the test."""
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    for name, value in TEST_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return dict(TEST_CREDENTIALS)


@pytest.fixture
def s3_bucket(moto_endpoint: str, aws_env: dict[str, str]) -> str:
    """A fresh, empty bucket on the moto server."""
    return create_bucket(moto_endpoint)
