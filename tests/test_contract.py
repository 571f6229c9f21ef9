"""The import contract sees every stage of the `vigil` namespace and fails an upward import."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("lint_imports", ROOT / ".ci" / "lint_imports.py")
lint_imports = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lint_imports)

LINTER = Path(sys.executable).with_name("lint-imports")


def _run_contract(view: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINTER), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=view,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def view(tmp_path) -> Path:
    return lint_imports.build_view(ROOT, tmp_path / "view")


def test_contract_holds_over_every_stage(view) -> None:
    for stage in ("geo", "ingest", "hardware", "sim", "detection", "tracks", "alerts", "maps"):
        assert (view / "vigil" / stage / "__init__.py").is_file()
    out = _run_contract(view)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 kept, 0 broken" in out.stdout


@pytest.mark.parametrize(
    ("stage", "upward"),
    [
        ("geo", "vigil.tracks.tracker"),
        ("tracks", "vigil.alerts.engine"),
        ("ingest", "vigil.sim"),
        ("alerts", "vigil.core"),
    ],
    ids=["geo-imports-tracks", "tracks-imports-alerts", "ingest-imports-sim", "alerts-imports-app"],
)
def test_contract_breaks_on_an_upward_import(view, stage, upward) -> None:
    link = view / "vigil" / stage
    target = link.resolve()
    link.unlink()
    shutil.copytree(target, link, ignore=shutil.ignore_patterns("__pycache__"))
    (link / "upward_probe.py").write_text(f"import {upward}\n", encoding="utf-8")
    out = _run_contract(view)
    assert out.returncode != 0
    assert f"vigil.{stage}.upward_probe" in out.stdout
