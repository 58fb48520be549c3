"""A real S3-compatible server for tests: moto's server mode, in a child process.

It runs what ``moto.server.ThreadedMotoServer`` runs (moto's WSGI app in werkzeug's
threaded server) but handles one request at a time, as moto's backends are not thread-safe.
Being a separate process keeps its memory, threads and warnings out of the test process:
memory tests measure only the client, and pytest's ``filterwarnings=error`` never sees
moto's or werkzeug's warnings. It stops when the context exits, or when the test process
dies (it waits on its stdin). Needs ``moto[server]`` and ``boto3``::

    with fake_aws_env(), moto_s3_server() as endpoint:
        bucket = create_bucket(endpoint)
        store = open_blob_store(f"s3://{bucket}/prefix", root=tmp, endpoint_url=endpoint)
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator

__all__ = ["TEST_CREDENTIALS", "create_bucket", "fake_aws_env", "moto_s3_server"]

#: The fake credentials :func:`fake_aws_env` sets; moto accepts any.
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "plinth-test-key",
    "AWS_SECRET_ACCESS_KEY": "plinth-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Variables that could point boto3 at a real account or a different server.
_CLEARED = (
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)

_SERVER = """
import logging, sys, threading, warnings
warnings.simplefilter("ignore")
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app,
)
from werkzeug.serving import make_server

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()

def serialized(environ, start_response):
    # moto's backends are not thread-safe: two PUTs of one key at once can fail with a 500
    # (it closes the replaced object's buffer while the other request still reads it).
    # Real S3 is consistent per key, so one request at a time is the faithful model.
    with lock:
        body = app(environ, start_response)
        try:
            return list(body)
        finally:
            getattr(body, "close", lambda: None)()

server = make_server(
    "127.0.0.1", 0, serialized, threaded=True, request_handler=MotoRequestHandler
)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_port, flush=True)
sys.stdin.read()
server.shutdown()
"""


@contextlib.contextmanager
def fake_aws_env() -> Iterator[dict[str, str]]:
    """Set fake AWS credentials (and hide real ones) in ``os.environ``; restore on exit."""
    saved = {name: os.environ.get(name) for name in (*TEST_CREDENTIALS, *_CLEARED)}
    saved |= {n: os.environ.get(n) for n in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")}
    try:
        for name in _CLEARED:
            os.environ.pop(name, None)
        os.environ.update(TEST_CREDENTIALS)
        # Keep ~/.aws out of it: a profile there must not change what tests see.
        os.environ["AWS_CONFIG_FILE"] = os.devnull
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        yield dict(TEST_CREDENTIALS)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def moto_s3_server(*, start_timeout: float = 60.0) -> Iterator[str]:
    """Start moto's S3 server on a free port of 127.0.0.1; yields its endpoint URL."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        stdin, stdout = proc.stdin, proc.stdout
        assert stdin is not None
        assert stdout is not None
        first_line: list[bytes] = []
        reader = threading.Thread(target=lambda: first_line.append(stdout.readline()))
        reader.start()
        reader.join(start_timeout)
        try:
            port = int(first_line[0]) if first_line and first_line[0].strip() else None
            if port is None:
                proc.kill()
                proc.wait()
                log.seek(0)
                detail = log.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"moto's S3 server did not start:\n{detail}")
            yield f"http://127.0.0.1:{port}"
        finally:
            # Closing its stdin is the server's signal to stop.
            with contextlib.suppress(OSError):
                stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            stdout.close()
            reader.join(1)


def create_bucket(endpoint_url: str, name: str | None = None) -> str:
    """Create a bucket (by default a fresh unique one) on the server; returns its name."""
    from plinth._extras import require

    boto3 = require("boto3", feature="plinth.testing.s3server")

    bucket = name or f"plinth-test-{uuid.uuid4().hex[:16]}"
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=TEST_CREDENTIALS["AWS_DEFAULT_REGION"],
        aws_access_key_id=TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    try:
        client.create_bucket(Bucket=bucket)
    finally:
        client.close()
    return bucket
