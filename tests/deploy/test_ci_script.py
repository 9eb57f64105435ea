"""`.ci/run`: a PostgreSQL that cannot be made ready stops CI loudly, before any test runs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(0o755)


def run_ci(tmp_path: Path, pg_ready: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`.ci/run` with pg_isready, pg_ctlcluster, sleep and make replaced by stubs."""
    marker = tmp_path / "make-ran"
    stub(tmp_path, "pg_isready", pg_ready)
    stub(tmp_path, "pg_ctlcluster", "exit 1")
    stub(tmp_path, "sleep", "exit 0")
    stub(tmp_path, "make", f'echo "CI=$CI" > {marker}')
    environment = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    environment.pop("CI", None)
    result = subprocess.run(
        [str(ROOT / ".ci" / "run")], env=environment, capture_output=True, text=True, check=False
    )
    return result, marker


def test_an_unstartable_postgresql_fails_the_run_before_the_tests(tmp_path: Path) -> None:
    result, marker = run_ci(tmp_path, "exit 2")
    assert result.returncode != 0
    assert "PostgreSQL did not become ready" in result.stderr
    assert not marker.exists()


def test_a_ready_postgresql_runs_the_tests_as_ci(tmp_path: Path) -> None:
    result, marker = run_ci(tmp_path, "exit 0")
    assert result.returncode == 0, result.stderr
    assert marker.read_text().strip() == "CI=true"
