"""Screenshots of the web UI's main pages for docs/ui.md, taken from a seeded team server.

Run from the repository root (needs Debian's ``chromium`` and the ``playwright`` package,
as the browser tests do)::

    .venv/bin/python docs/screenshots.py

It builds the browser tests' scene (tests/ui/browser/scene.py: a live server with runs, a
dataset, a model, a deployment, a monitor and a pipeline run) in a temporary folder, logs
in as its admin and writes ``docs/img/ui-*.png`` (1280x800, PNG).
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
VIEWPORT = {"width": 1280, "height": 800}


def _scene_module() -> ModuleType:
    """tests/ui/browser/scene.py, loaded by path (the tests folder is not a package)."""
    path = ROOT / "tests" / "ui" / "browser" / "scene.py"
    spec = importlib.util.spec_from_file_location("plinth_ui_scene", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def shots(scene: object) -> dict[str, str]:
    """File name -> page (below the project) of each screenshot."""
    runs: dict[str, str] = scene.runs  # type: ignore[attr-defined]
    ids: dict[str, str] = scene.ids  # type: ignore[attr-defined]
    tuning = ",".join(runs[name] for name in list(runs)[:4])
    return {
        "ui-runs.png": "runs",
        "ui-run.png": f"runs/{runs['logreg-a']}",
        "ui-compare.png": f"compare?runs={tuning}",
        "ui-model.png": "models/delays",
        "ui-deployment.png": "deployments/delays-api",
        "ui-lineage.png": f"lineage/run/{runs['train-C0.1']}",
        "ui-pipeline-run.png": f"pipelines/runs/{ids['pipeline_run']}",
    }


def main() -> int:
    scenes = _scene_module()
    reason = scenes.missing_browser()
    if reason:
        print(f"cannot take screenshots: {reason}", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="plinth-shots-") as folder:
        scene = scenes.build_scene(Path(folder))
        try:
            with scenes.chromium() as browser:
                context = browser.new_context(viewport=VIEWPORT)
                page = context.new_page()
                scenes.log_in(page, scene.url, "admin")
                page_url: Callable[[str], str] = scene.page
                for name, tail in shots(scene).items():
                    response = page.goto(page_url(tail))
                    if response is None or response.status != 200:
                        status = response.status if response else "no response"
                        print(f"{tail}: {status}", file=sys.stderr)
                        return 1
                    page.screenshot(path=str(OUT / name))
                    print(f"wrote {(OUT / name).relative_to(ROOT)}")
                context.close()
        finally:
            scene.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
