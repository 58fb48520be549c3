"""The runs pages of the web UI, over a live team server (``plinth.testing.server``).

One server and one project per module: runs with params, metrics, tags, system metrics,
artifacts, a source diff, an environment and a notebook, written through the project's
ledger; readers and writers call with their own tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from plinth.api.spaces import Spaces
from plinth.entities import MetricPoint, RecordRef
from plinth.ledger import Ledger
from plinth.testing.server import ServerHandle, start_server

XSS = "<script>alert(1)</script>"
DIFF = "diff --git a/train.py b/train.py\n@@ -1 +1 @@\n-lr = 0.1\n+lr = 0.2\n"
NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {},
    "cells": [
        {
            "cell_type": "code",
            "source": "print('<b>hi</b>')",
            "metadata": {},
            "outputs": [
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {
                        "text/html": "<script>alert(2)</script>",
                        "text/plain": "shown as text",
                    },
                },
            ],
            "execution_count": 1,
        },
    ],
}


@dataclass
class Scene:
    server: ServerHandle
    read: httpx.Client
    write: httpx.Client
    runs: dict[str, str]  # name -> id

    def page(self, client: httpx.Client, path: str, **params: str) -> httpx.Response:
        response = client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response


def _fill(ledger: Ledger, spaces: Spaces) -> dict[str, str]:
    project = ledger.projects.get_project("demo")
    experiment = ledger.projects.ensure_experiment(project.id, "default")
    blobs = spaces.blobs("demo")
    env = ledger.environments.put(
        "d" * 64, python="3.11.9", platform="linux", packages={"numpy": "2.0.0"}, extra={}
    )
    runs: dict[str, str] = {}
    for i in range(6):
        name = XSS if i == 0 else f"run-{i}"
        run = ledger.runs.create_run(
            experiment.id,
            name=name,
            params={"lr": [0.1, 0.01, 0.05, 0.2, 0.3, 0.4][i], "depth": i},
            tags={"team": "vision" if i % 2 else "nlp"},
            source={"commit": "abc123", "branch": "main", "dirty": True},
            environment_id=env.id,
        )
        runs[name] = run.id
        points = [MetricPoint("loss", 1.0 / (s + 1) + i, s, 1000 + s, s) for s in range(200)]
        points.append(MetricPoint("acc", i / 10, 199, 2000, 200))
        points += [MetricPoint("system/cpu_percent", 50.0, s, 3000 + s, 300 + s) for s in range(5)]
        ledger.runs.log_metrics(run.id, points)
    first = runs[XSS]
    weights = blobs.put_bytes(b"\x00weights" * 100)
    page = blobs.put_bytes(b"<html><script>alert(3)</script></html>")
    diff = blobs.put_bytes(DIFF.encode())
    notebook = blobs.put_bytes(json.dumps(NOTEBOOK).encode())
    ledger.artifacts.record_many(
        RecordRef("run", first),
        [
            ("model/weights.bin", weights.digest, weights.size, None),
            ("report.html", page.digest, page.size, "text/html"),
            ("source/diff.patch", diff.digest, diff.size, "text/x-diff"),
            ("source/notebook.ipynb", notebook.digest, notebook.size, None),
        ],
    )
    return runs


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    server = start_server(tmp_path_factory.mktemp("ui") / "server")
    try:
        server.create_project("demo")
        server.create_project("other")
        read_token = server.token("rita", "demo", "read")
        write_token = server.token("will", "demo", "write")
        spaces = Spaces(server.config)
        try:
            runs = _fill(spaces.ledger("demo", "will"), spaces)
        finally:
            spaces.close()
        with (
            httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {read_token}"}
            ) as read,
            httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {write_token}"}
            ) as write,
        ):
            yield Scene(server, read, write, runs)
    finally:
        server.stop()


def _shown_runs(html: str) -> list[str]:
    """The run ids of the table's rows, in order."""
    return re.findall(r'name="runs" value="([0-9a-f-]+)"', html)


def test_the_runs_page_lists_runs_with_escaped_names_and_a_strict_csp(scene: Scene) -> None:
    response = scene.page(scene.read, "/projects/demo/runs")
    html = response.text
    assert set(_shown_runs(html)) == set(scene.runs.values())
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert XSS not in html
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "default-src 'none'" in policy
    # default columns: the page's metrics (not system ones) and params
    assert "metrics.acc" in html
    assert "params.lr" in html
    assert "system/cpu_percent" not in html
    # newest first by default: the Started header offers the other way
    assert 'href="/projects/demo/runs?order=start_time+ASC"' in html


def test_filtering_uses_the_search_language(scene: Scene) -> None:
    html = scene.page(scene.read, "/projects/demo/runs", filter="params.lr = 0.01").text
    assert _shown_runs(html) == [scene.runs["run-1"]]
    html = scene.page(scene.read, "/projects/demo/runs", filter="tags.team = 'nlp'").text
    assert set(_shown_runs(html)) == {scene.runs[XSS], scene.runs["run-2"], scene.runs["run-4"]}
    bad = scene.page(scene.read, "/projects/demo/runs", filter="metrics.acc >>").text
    assert 'id="runs-error"' in bad
    assert _shown_runs(bad) == []


def test_sorting_by_a_metric_either_way_and_by_a_param(scene: Scene) -> None:
    by_acc = [scene.runs[XSS]] + [scene.runs[f"run-{i}"] for i in range(1, 6)]
    html = scene.page(scene.read, "/projects/demo/runs", order="metrics.acc DESC").text
    assert _shown_runs(html) == by_acc[::-1]
    assert 'href="/projects/demo/runs?order=metrics.acc+ASC"' in html  # the header flips it
    html = scene.page(scene.read, "/projects/demo/runs", order="metrics.acc ASC").text
    assert _shown_runs(html) == by_acc
    html = scene.page(scene.read, "/projects/demo/runs", order="params.lr").text
    lrs = [0.1, 0.01, 0.05, 0.2, 0.3, 0.4]
    names = [XSS] + [f"run-{i}" for i in range(1, 6)]
    assert _shown_runs(html) == [scene.runs[n] for _, n in sorted(zip(lrs, names, strict=True))]


def test_pages_are_cut_on_the_server(scene: Scene) -> None:
    order = {"order": "metrics.acc DESC", "limit": "4"}
    first = scene.page(scene.read, "/projects/demo/runs", **order).text
    second = scene.page(scene.read, "/projects/demo/runs", page="2", **order).text
    assert len(_shown_runs(first)) == 4
    assert _shown_runs(second) == [scene.runs["run-1"], scene.runs[XSS]]
    assert 'rel="next"' in first
    assert 'rel="next"' not in second
    assert 'rel="prev"' in second
    assert "Rows 5\N{EN DASH}6" in second
    response = scene.read.get("/projects/demo/runs", params={"page": "0"})
    assert response.status_code == 422


def test_chosen_columns_are_shown(scene: Scene) -> None:
    html = scene.page(scene.read, "/projects/demo/runs", columns="tags.team,params.depth").text
    assert ">tags.team</a>" in html
    assert ">params.depth</a>" in html
    assert ">metrics.acc</a>" not in html
    assert ">vision<" in html


def test_the_run_page_shows_everything_the_run_recorded(scene: Scene) -> None:
    run_id = scene.runs[XSS]
    html = scene.page(scene.read, f"/projects/demo/runs/{run_id}").text
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    charts = html.split('id="metric-charts"')[1].split("</div>")[0]
    assert charts.count('<svg class="chart"') == 2  # acc and loss
    assert '<polyline fill="none"' in charts
    assert 'id="system-charts"' in html
    assert "system/cpu_percent" in html
    assert "model/weights.bin" in html
    assert '<span class="add">+lr = 0.2</span>' in html
    assert '<span class="del">-lr = 0.1</span>' in html
    assert "abc123" in html
    assert "3.11.9" in html
    assert "numpy" in html
    assert 'id="notebook-link"' in html
    # the summary of loss: 200 points, min and max over all of them
    assert re.search(r"<td>loss</td><td class=\"n\">[^<]+</td><td class=\"n\">199</td>", html)
    assert ">200</td>" in html


def test_a_reader_sees_no_tag_form_and_cannot_post_one(scene: Scene) -> None:
    run_id = scene.runs["run-1"]
    assert 'id="add-tag"' not in scene.page(scene.read, f"/projects/demo/runs/{run_id}").text
    forged = scene.read.post(
        f"/projects/demo/runs/{run_id}/tags", data={"key": "forged", "value": "yes"}
    )
    assert forged.status_code == 403
    assert "forged" not in scene.page(scene.read, f"/projects/demo/runs/{run_id}").text


def test_a_writer_sets_a_tag_from_the_form(scene: Scene) -> None:
    run_id = scene.runs["run-2"]
    html = scene.page(scene.write, f"/projects/demo/runs/{run_id}").text
    assert 'id="add-tag"' in html
    assert 'name="csrf"' in html
    response = scene.write.post(
        f"/projects/demo/runs/{run_id}/tags", data={"key": "stage", "value": "<b>prod</b>"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/projects/demo/runs/{run_id}#tags"
    html = scene.page(scene.read, f"/projects/demo/runs/{run_id}").text
    assert "<td>stage</td><td>&lt;b&gt;prod&lt;/b&gt;</td>" in html
    empty = scene.write.post(f"/projects/demo/runs/{run_id}/tags", data={"key": " "})
    assert empty.status_code == 422


def test_artifacts_download_by_ledger_path_as_attachments(scene: Scene) -> None:
    base = f"/projects/demo/runs/{scene.runs[XSS]}/artifact"
    response = scene.read.get(base, params={"path": "model/weights.bin"})
    assert response.status_code == 200
    assert response.content == b"\x00weights" * 100
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment;")
    html = scene.read.get(base, params={"path": "report.html"})
    assert html.headers["content-type"] == "application/octet-stream"
    assert "sandbox" in html.headers["content-security-policy"]
    assert scene.read.get(base, params={"path": "missing.bin"}).status_code == 404
    for path in ("../../server.db", "/etc/passwd", "model/../../x"):
        assert scene.read.get(base, params={"path": path}).status_code in (400, 404, 422)
    other_run = f"/projects/demo/runs/{scene.runs['run-1']}/artifact"
    assert scene.read.get(other_run, params={"path": "model/weights.bin"}).status_code == 404


def test_the_notebook_renders_without_any_script(scene: Scene) -> None:
    response = scene.page(scene.read, f"/projects/demo/runs/{scene.runs[XSS]}/notebook")
    assert "print(&#x27;&lt;b&gt;hi&lt;/b&gt;&#x27;)" in response.text
    assert "shown as text" in response.text
    assert "<script" not in response.text
    assert "script-src" not in response.headers["content-security-policy"]
    assert scene.read.get(f"/projects/demo/runs/{scene.runs['run-1']}/notebook").status_code == 404


def test_compare_overlays_runs_and_marks_differences(scene: Scene) -> None:
    a, b = scene.runs[XSS], scene.runs["run-3"]
    html = scene.page(scene.read, "/projects/demo/compare", runs=f"{a},{b}").text
    assert XSS not in html
    params = html.split('id="compare-params"')[1].split("</table>")[0]
    assert re.search(r'<tr class="diff"><td>lr</td><td>0.1</td><td>0.2</td></tr>', params)
    charts = html.split('id="compare-charts"')[1]
    loss = charts.split('aria-label="loss"')[1].split("</svg>")[0]
    assert loss.count("<polyline") == 2
    assert "run-3 (" in loss  # the legend
    # the form on the runs page sends repeated runs=; that works too
    again = scene.read.get("/projects/demo/compare", params=[("runs", a), ("runs", b)])
    assert again.status_code == 200
    assert scene.read.get("/projects/demo/compare").status_code == 422
    assert scene.read.get("/projects/demo/compare", params={"runs": "nope"}).status_code == 404


def test_json_twins_for_api_users(scene: Scene) -> None:
    response = scene.read.get(
        "/api/v1/projects/demo/runs", params={"order": "metrics.acc DESC", "limit": "2"}
    )
    assert response.status_code == 200
    body = response.json()
    assert [r["name"] for r in body["runs"]] == ["run-5", "run-4"]
    assert body["has_next"] is True
    assert body["runs"][0]["metrics"]["acc"] == 0.5
    bad = scene.read.get("/api/v1/projects/demo/runs", params={"filter": "nope"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "filter"
    run_id = scene.runs["run-1"]
    series = scene.read.get(
        f"/api/v1/projects/demo/runs/{run_id}/metrics/loss", params={"points": "20"}
    ).json()
    assert len(series["points"]) == 20
    assert sum(p["count"] for p in series["points"]) == 200
    system = scene.read.get(f"/api/v1/projects/demo/runs/{run_id}/metrics/system/cpu_percent")
    assert [p["last"] for p in system.json()["points"]] == [50.0] * 5


def test_access_is_checked(scene: Scene) -> None:
    anonymous = httpx.get(f"{scene.server.url}/projects/demo/runs", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")
    assert httpx.get(f"{scene.server.url}/api/v1/projects/demo/runs").status_code == 401
    assert scene.read.get("/projects/other/runs").status_code == 403
    assert scene.read.get("/projects/nosuch/runs").status_code == 403


def test_static_files_come_from_a_fixed_list(scene: Scene) -> None:
    css = scene.read.get("/static/plinth.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    js = httpx.get(f"{scene.server.url}/static/plinth.js")
    assert js.status_code == 200
    assert "addEventListener" in js.text
    for name in ("render.py", "..%2Frender.py", "..%2F..%2Fserver.db", "plinth.CSS"):
        assert httpx.get(f"{scene.server.url}/static/{name}").status_code == 404


def test_the_home_page_lists_the_users_projects(scene: Scene) -> None:
    html = scene.page(scene.read, "/").text
    assert 'href="/projects/demo/runs"' in html
    assert "/projects/other/" not in html
